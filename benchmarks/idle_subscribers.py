"""Idle subscribers beside active clients: ``python -m benchmarks.idle_subscribers``.

The scenario of issue 13, point 2: ``--idle`` clients subscribe to a channel
and never poll (a closed dashboard tab is one), so their queues are full;
``--active`` clients long-poll the same channel with ``ack``; a backend
publishes ``--rate`` messages a second for ``--seconds`` over ZeroMQ (the
notifier library). Prints one JSON line: the hub's CPU seconds over the run
(psutil), and per active client what it received, lost (by the ``i`` each
payload carries), got twice, and how many polls were not answered 200.
Idle clients must cost memory only: the active ones lose nothing.
"""

import argparse
import json
import sys
import tempfile
import threading
import time
import http.client

import psutil

from benchmarks.backend import Backend
from benchmarks.targets import Bridge
from tests.stack import wait_for

CHANNEL = "bench"


class Active(threading.Thread):
    """One long-polling client that acknowledges what it got; stops when told and drained."""

    def __init__(self, bridge, client_id):
        super().__init__(daemon=True)
        self.port = bridge.port
        self.client_id = client_id
        self.seen = []
        self.refused = 0
        self.dropped = 0
        self.stop = threading.Event()

    def run(self):
        ack = 0
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=40)
        while True:
            try:
                conn.request("GET", f"/ws/poll?client_id={self.client_id}&wait=1&ack={ack}")
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=40)
                self.refused += 1
                continue
            if resp.status != 200:
                self.refused += 1
                continue
            reply = json.loads(body)
            self.dropped += reply.get("dropped", 0)
            for message in reply["messages"]:
                ack = max(ack, message["seq"])
                if message.get("type") == "bench":
                    self.seen.append(message["i"])
            if self.stop.is_set() and not reply["messages"]:
                break
        conn.close()


def run(idle, active, rate, seconds, env=None, workdir=None):
    """Run the scenario once on a fresh stack; returns the figures as a dict."""
    bridge = Bridge(workdir or tempfile.mkdtemp(prefix="bench-idle-"), env).start()
    try:
        stack = bridge.stack
        for _ in range(idle):
            stack.handshake("dashboard", [CHANNEL])
        readers = [Active(bridge, stack.handshake("lightroom", [CHANNEL])) for _ in range(active)]
        for reader in readers:
            reader.start()
        backend = Backend(bridge.env, use_notifier=True)
        hub = psutil.Process(bridge.pid_of("hub"))

        def published():
            return stack.get("/ws/status").json["status"]["messages"]["published"]

        def warm():  # the library's first messages can go before its PUSH is connected
            backend.publish(CHANNEL, {"type": "warmup"})
            return published() > 0

        wait_for(warm, 20, interval=0.2, message="the first publish")
        base = published()
        count = int(rate * seconds)
        cpu0 = sum(hub.cpu_times()[:2])
        start = time.monotonic()
        for i in range(count):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            backend.publish(CHANNEL, {"type": "bench", "i": i})
        sent_for = time.monotonic() - start
        wait_for(lambda: published() >= base + count, 60,
                 interval=0.2, message="the hub to take every publish")
        for reader in readers:
            reader.stop.set()
        for reader in readers:
            reader.join(60)
        cpu = sum(hub.cpu_times()[:2]) - cpu0
        backend.close()
        clients = []
        for reader in readers:
            got = set(reader.seen)
            clients.append({
                "received": len(got), "lost": count - len(got), "duplicated": len(reader.seen) - len(got),
                "dropped_reported": reader.dropped, "not_200": reader.refused,
            })
        return {"idle": idle, "active": active, "published": count, "rate": round(count / sent_for, 1),
                "hub_cpu_seconds": round(cpu, 2), "hub_rss_mb": round(hub.memory_info().rss / 2**20, 1),
                "clients": clients}
    finally:
        bridge.stop()


def main():
    parser = argparse.ArgumentParser(prog="python -m benchmarks.idle_subscribers", description=__doc__)
    parser.add_argument("--idle", type=int, default=200)
    parser.add_argument("--active", type=int, default=3)
    parser.add_argument("--rate", type=float, default=490.0)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a BRIDGE_* setting")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.set if "=" in item)
    print(json.dumps(run(args.idle, args.active, args.rate, args.seconds, env)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
