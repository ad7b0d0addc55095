"""(f) LrSocket push against long-poll, with the plug-in's own Lua code under lua5.1 and the SDK stand-in.

The plug-in instances run in one lua5.1 process (benchmarks/lrsocket_plugins.lua,
the LrSocket stand-in of tests/lua/lr_shim); messages are published straight
into the hub's request socket, each stamped with its send time, and the Lua
handler prints when it got each one. Figures:

- ``latency``: publish-to-Lua-handler p50/p99/max for one plug-in, one
  message at a time, 10 ms apart (so a long-poller is parked again);
- ``cpu``: the services' CPU (hub and gateway, all their processes) per
  delivered message, with N plug-ins subscribed to one channel;
- ``idle``: the services' CPU while N plug-ins are connected and nothing is sent.
"""

import asyncio
import itertools
import os
import shutil
import time

import zmq

from benchmarks.scenarios import CpuMeter, channel_name, ms, percentile
from services import protocol

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = os.path.join(HERE, "lrsocket_plugins.lua")
GAP = 0.01  # seconds between two latency probes


def available():
    return shutil.which("lua5.1") is not None


class Plugins:
    """N plug-in instances in one lua5.1 process, on ``transport``, subscribed to ``channel``."""

    def __init__(self, target, transport, clients, channel):
        self.target = target
        self.transport = transport
        self.clients = clients
        self.channel = channel
        self.proc = None

    async def __aenter__(self):
        env = dict(os.environ, BRIDGE_URL=f"http://127.0.0.1:{self.target.port}", BENCH_TRANSPORT=self.transport,
                   BENCH_CLIENTS=str(self.clients), BENCH_CHANNEL=self.channel)
        self.proc = await asyncio.create_subprocess_exec(
            "lua5.1", DRIVER, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True)
        line = await asyncio.wait_for(self.proc.stdout.readline(), 90)
        if line.strip() != b"ready":
            raise RuntimeError(f"the Lua plug-ins did not get ready: {line!r}")
        return self

    async def receipt(self, timeout=10.0):
        """The next handler call: (client index, n, epoch seconds)."""
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError("the Lua plug-ins exited")
        index, n, at = line.split()
        return int(index), int(n), float(at)

    async def __aexit__(self, *exc):
        if self.proc.returncode is None:
            self.proc.terminate()  # our own child, by its PID
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        return False


class HubPublisher:
    """Publish requests straight into the hub's request socket; replies are drained, not awaited."""

    def __init__(self, env):
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(env["BRIDGE_HUB_RPC"])
        self.ids = itertools.count(1)

    def publish(self, channel, n):
        event = protocol.publish_event(protocol.TARGET_CHANNEL, {"type": "bench", "n": n, "sent": time.time()}, channel)
        self.sock.send_multipart(protocol.encode_request(protocol.OP_PUBLISH, next(self.ids), **event))
        while self.sock.poll(0):
            self.sock.recv_multipart()

    def close(self):
        self.sock.close()


async def latency(target, transport, count, warmup):
    """Publish-to-handler latency for one plug-in, one message at a time."""
    channel = channel_name("lrs-lat")
    pub = HubPublisher(target.env)
    samples = []
    try:
        async with Plugins(target, transport, 1, channel) as plugins:
            with CpuMeter(target.pids()) as cpu:
                for n in range(warmup + count):
                    sent = time.time()
                    pub.publish(channel, n)
                    _, got, at = await plugins.receipt()
                    assert got == n, (got, n)
                    if n >= warmup:
                        samples.append(at - sent)
                    await asyncio.sleep(GAP)
    finally:
        pub.close()
    return {"p50": ms(percentile(samples, 50)), "p99": ms(percentile(samples, 99)), "max": ms(max(samples)),
            **cpu.figures()}


async def cpu_per_message(target, transport, clients, messages, rate):
    """Service CPU per delivered message with ``clients`` plug-ins on one channel, ``rate`` messages/s."""
    channel = channel_name("lrs-cpu")
    pub = HubPublisher(target.env)
    expected = clients * messages
    got = 0
    try:
        async with Plugins(target, transport, clients, channel) as plugins:
            with CpuMeter(target.pids()) as cpu:
                async def publish():
                    start = time.monotonic()
                    for n in range(messages):
                        pub.publish(channel, n)
                        await asyncio.sleep(max(0.0, start + (n + 1) / rate - time.monotonic()))
                sender = asyncio.create_task(publish())
                try:
                    while got < expected:
                        await plugins.receipt(timeout=30)
                        got += 1
                finally:
                    await sender
    finally:
        pub.close()
    service_seconds = cpu.service / 100 * cpu.wall
    return {"service_us": service_seconds / max(1, got) * 1e6, "delivered": got / expected * 100, **cpu.figures()}


async def idle(target, transport, clients, seconds):
    """The services' CPU while ``clients`` plug-ins are connected (none: the baseline) and nothing is published."""
    if not clients:
        with CpuMeter(target.pids()) as cpu:
            await asyncio.sleep(seconds)
        return {"idle_cpu": cpu.service, **cpu.figures()}
    channel = channel_name("lrs-idle")
    async with Plugins(target, transport, clients, channel):
        await asyncio.sleep(1.0)  # let the last announcements and acks settle: this is the idle state
        with CpuMeter(target.pids()) as cpu:
            await asyncio.sleep(seconds)
    return {"idle_cpu": cpu.service, **cpu.figures()}
