"""The systems under test: the bridge (its Procfile processes) and nchan (nginx).

Both expose the same small surface to the scenarios: start/stop, the PIDs
of their service processes (for RSS and CPU), a long-polling subscriber, an
HTTP publish, a control request, and a way to count parked polls.
"""

import asyncio
import itertools
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import orjson
import psutil

from benchmarks import payload
from benchmarks.httpclient import Connection, header
from tests.stack import Stack, free_port, wait_for

HERE = Path(__file__).resolve().parent
NCHAN_MODULE = Path("/usr/lib/nginx/modules/ngx_nchan_module.so")
NGINX = "/usr/sbin/nginx"

_PAYLOAD = re.compile(rb'"i":(\d+),"t":([0-9.]+)')


def service_processes(pids):
    """``psutil.Process`` for each PID and all their children (gunicorn and nginx workers)."""
    procs = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            procs.append(proc)
            procs.extend(proc.children(recursive=True))
        except psutil.NoSuchProcess:
            pass
    return procs


def total_rss(pids):
    """Resident memory of the service processes, in bytes."""
    total = 0
    for proc in service_processes(pids):
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


# ------------------------------------------------------------------ bridge
class BridgeSubscriber:
    """A client of the bridge: handshake, subscribe, then long-poll with ack."""

    def __init__(self, target, channel, conn=None):
        self.target = target
        self.channel = channel
        self.conn = conn or Connection("127.0.0.1", target.port)
        self.client_id = None
        self.ack = 0
        self.dropped = 0

    async def setup(self):
        """Handshake, subscribe to the channel and drain the welcome message."""
        status, _, body = await self.conn.request(
            b"POST", b"/ws/handshake", b'{"client_type":"bench","protocol_version":"1.0"}'
        )
        if status != 200:
            raise RuntimeError(f"handshake answered {status}: {body[:200]!r}")
        self.client_id = orjson.loads(body)["client_id"].encode()
        if self.channel:
            msg = orjson.dumps({"client_id": self.client_id.decode(),
                                "message": {"type": "subscribe", "channels": [self.channel]}})
            status, _, body = await self.conn.request(b"POST", b"/ws/send", msg)
            if status != 200:
                raise RuntimeError(f"subscribe answered {status}: {body[:200]!r}")
        await self.poll(0)
        return self

    def poll_path(self, wait):
        return b"/ws/poll?client_id=%s&wait=%g&ack=%d" % (self.client_id, wait, self.ack)

    async def poll(self, wait):
        """One poll; returns ``[(i, t), ...]`` for the benchmark messages it carried."""
        status, _, body = await self.conn.request(b"GET", self.poll_path(wait), timeout=wait + 10)
        if status != 200:
            raise RuntimeError(f"poll answered {status}: {body[:200]!r}")
        reply = orjson.loads(body)
        self.dropped += reply.get("dropped", 0)
        out = []
        for m in reply["messages"]:
            self.ack = m["seq"]
            if m["type"] == "bench":
                out.append((m["i"], m["t"]))
        return out

    async def close(self):
        """Disconnect (answers a parked poll) and close the connection."""
        if self.client_id is not None:
            try:
                control = Connection("127.0.0.1", self.target.port)
                body = b'{"client_id":"%s"}' % self.client_id
                await control.request(b"POST", b"/ws/disconnect", body, timeout=10)
                control.close()
            except Exception:
                pass
        self.conn.close()


class Bridge:
    """The bridge's processes, started from the Procfile through tests/stack.py's Stack."""

    name = "bridge"

    # The load generator is one address opening thousands of clients: the
    # per-address handshake and send rate limits would refuse it.
    BENCH_ENV = {"BRIDGE_HANDSHAKE_RATE": "0", "BRIDGE_SEND_RATE": "0"}

    def __init__(self, workdir, env=None):
        self.stack = Stack(workdir, dict(self.BENCH_ENV, **(env or {})))
        self.port = self.stack.http_port

    def start(self):
        """Start every Procfile process and wait until the gateway answers."""
        self.stack.start()
        self.stack.wait_ready(timeout=30)
        return self

    def stop(self):
        """Stop the processes by PID."""
        self.stack.stop_all()

    @property
    def env(self):
        return self.stack.env

    def pids(self):
        return [p.pid for p in self.stack.procs.values()]

    def pid_of(self, name):
        proc = self.stack.procs.get(name)
        return proc.pid if proc else None

    def has(self, name):
        return name in self.stack.procs

    def subscriber(self, channel, conn=None):
        return BridgeSubscriber(self, channel, conn)

    @staticmethod
    def publish_request(channel, i, t):
        """``(path, body)`` of an HTTP publish of benchmark message ``i`` to ``channel``."""
        return b"/ws/broadcast", orjson.dumps({"channel": channel, "message": payload(i, t)})

    async def publish_http(self, conn, channel, i):
        path, body = self.publish_request(channel, i, time.monotonic())
        status, _, reply = await conn.request(b"POST", path, body)
        if status != 200:
            raise RuntimeError(f"broadcast answered {status}: {reply[:200]!r}")

    async def parked(self, conn):
        """How many polls the hub holds right now (-1 while it is too busy to say)."""
        status, _, body = await conn.request(b"GET", b"/ws/status")
        if status != 200:
            return -1
        return orjson.loads(body)["status"]["parked_polls"]

    async def control_client(self, conn):
        """Set up what ``control`` needs (a client id for ping); returns a state object."""
        sub = BridgeSubscriber(self, None, conn)
        await sub.setup()
        return sub

    _control_seq = itertools.count()

    async def control(self, conn, state):
        """One control request (alternately GET /ws/status and a ping through /ws/send)."""
        if next(self._control_seq) % 2:
            status, _, _ = await conn.request(b"GET", b"/ws/status")
        else:
            body = b'{"client_id":"%s","message":{"type":"ping"}}' % state.client_id
            status, _, _ = await conn.request(b"POST", b"/ws/send", body)
        if status != 200:
            raise RuntimeError(f"control request answered {status}")

    # The control requests of the busy-control scenario (scenarios.Prober), one at a time, in turn.
    PROBES = ("status", "send", "broadcast")
    # Poll answers say how many messages a client missed (``dropped``).
    counts_drops = True
    _probe_seq = itertools.count()

    async def probe(self, conn, state, kind):
        """One control request of ``kind``: GET /ws/status, a ping through POST /ws/send (the prober's
        own client), or a POST /ws/broadcast to a channel no client is on."""
        if kind == "status":
            status, _, body = await conn.request(b"GET", b"/ws/status")
        elif kind == "send":
            status, _, body = await conn.request(
                b"POST", b"/ws/send", b'{"client_id":"%s","message":{"type":"ping"}}' % state.client_id)
        else:
            status, _, body = await conn.request(b"POST", b"/ws/broadcast", orjson.dumps(
                {"channel": f"probe-{os.getpid()}", "message": payload(next(self._probe_seq), time.monotonic())}))
        if status != 200:
            raise RuntimeError(f"{kind} probe answered {status}: {body[:200]!r}")


# ------------------------------------------------------------------- nchan
class NchanSubscriber:
    """A long-poll subscriber of nchan, walking the channel by Last-Modified/Etag."""

    def __init__(self, target, channel, conn=None):
        self.target = target
        self.channel = channel.encode()
        self.conn = conn or Connection("127.0.0.1", target.port)
        self.since = b""
        self.dropped = 0

    async def setup(self):
        return self

    def poll_path(self, wait):
        return b"/sub?id=%s" % self.channel

    async def poll(self, wait):
        status, block, body = await self.conn.request(
            b"GET", self.poll_path(wait), headers=self.since, timeout=wait + 10
        )
        if status == 200:
            modified = header(block, b"last-modified")
            etag = header(block, b"etag")
            self.since = b"If-Modified-Since: %s\r\nIf-None-Match: %s\r\n" % (modified, etag)
            return [(int(i), float(t)) for i, t in _PAYLOAD.findall(body)]
        if status in (304, 408):  # nothing arrived within the subscriber timeout
            return []
        raise RuntimeError(f"nchan subscriber answered {status}: {body[:200]!r}")

    async def close(self):
        self.conn.close()


class Nchan:
    """nginx with the nchan module, from benchmarks/nchan.conf, on a free loopback port."""

    name = "nchan"

    def __init__(self, workdir, workers=2, buffer_length=200000):
        self.workdir = Path(workdir)
        self.port = free_port()
        self.workers = workers
        self.buffer_length = buffer_length
        self.proc = None

    @staticmethod
    def available():
        """True when nginx and the nchan module are installed."""
        return os.path.exists(NGINX) and NCHAN_MODULE.exists()

    def start(self):
        """Render the config into the work folder, start nginx in the foreground, wait for it."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "tmp").mkdir(exist_ok=True)
        conf = (HERE / "nchan.conf").read_text()
        for key, value in {
            "MODULE": str(NCHAN_MODULE), "DIR": str(self.workdir), "PORT": str(self.port),
            "WORKERS": str(self.workers), "BUFFER": str(self.buffer_length),
        }.items():
            conf = conf.replace("@" + key + "@", value)
        path = self.workdir / "nginx.conf"
        path.write_text(conf)
        self.out = open(self.workdir / "nginx.out", "ab")
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(self.workdir), "-c", str(path), "-e", str(self.workdir / "error.log")],
            stdout=self.out, stderr=subprocess.STDOUT, start_new_session=True,
        )

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError((self.workdir / "error.log").read_text()[-2000:])
            import http.client
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                conn.request("GET", "/nchan_status")
                return conn.getresponse().status == 200
            finally:
                conn.close()
        wait_for(ready, 15, message="nginx with nchan")
        return self

    def stop(self):
        """SIGTERM nginx's master by PID, wait, then SIGKILL."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.out.close()
        self.proc = None

    def pids(self):
        return [self.proc.pid] if self.proc else []

    def has(self, name):
        return False

    def subscriber(self, channel, conn=None):
        return NchanSubscriber(self, channel, conn)

    @staticmethod
    def publish_request(channel, i, t):
        """``(path, body)`` of an HTTP publish of benchmark message ``i`` to ``channel``."""
        return b"/pub?id=%s" % channel.encode(), orjson.dumps(payload(i, t))

    async def publish_http(self, conn, channel, i):
        path, body = self.publish_request(channel, i, time.monotonic())
        status, _, reply = await conn.request(b"POST", path, body)
        if status not in (201, 202):
            raise RuntimeError(f"nchan publish answered {status}: {reply[:200]!r}")

    async def parked(self, conn):
        """Subscribers nchan holds in all (a channel's own count covers one worker only)."""
        status, _, body = await conn.request(b"GET", b"/nchan_status")
        if status != 200:
            return -1
        return int(re.search(rb"subscribers: (\d+)", body).group(1))

    async def control_client(self, conn):
        return None

    _control_seq = itertools.count()

    async def control(self, conn, state):
        """One control request (alternately the status page and a publish to an empty channel)."""
        if next(self._control_seq) % 2:
            status, _, _ = await conn.request(b"GET", b"/nchan_status")
        else:
            status, _, _ = await conn.request(b"POST", b"/pub?id=control", b'{"type":"ping"}')
        if status not in (200, 201, 202):
            raise RuntimeError(f"control request answered {status}")

    # nchan's nearest to the bridge's probes: its status page, a publish to a channel of the prober's
    # own (it has no per-client send), a publish to a channel no subscriber is on.
    PROBES = ("status", "send", "broadcast")
    counts_drops = False  # a long-poll subscriber that fell behind the buffer is not told

    async def probe(self, conn, state, kind):
        if kind == "status":
            status, _, body = await conn.request(b"GET", b"/nchan_status")
        else:
            path = b"/pub?id=probe-send" if kind == "send" else b"/pub?id=probe"
            status, _, body = await conn.request(b"POST", path, b'{"type":"ping"}')
        if status not in (200, 201, 202):
            raise RuntimeError(f"{kind} probe answered {status}: {body[:200]!r}")


def nginx_installed():
    """Whether ``make bench-compare`` can run here."""
    return Nchan.available() and shutil.which(NGINX) is not None


async def wait_parked(target, conn, count, base=0, timeout=30.0, tasks=()):
    """Wait (with a deadline) until ``target`` holds ``count`` parked polls more than ``base``.

    ``tasks`` are the pollers: one that failed ends the wait with its error.
    """
    deadline = time.monotonic() + timeout
    while True:
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()
        held = await target.parked(conn) - base
        if held >= count:
            return held
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {held} of {count} polls parked after {timeout:g}s")
        await asyncio.sleep(0.02)
