"""One soak run: start the stack, the clients and the publishers, inject faults, drain, check, tear down.

Everything is bounded: the run's length, each fault's recovery wait, the
final drain, every request's timeout. Only processes this run started are
ended, by PID (tests/stack.py's ``Stack``; gunicorn's workers are its own
children), also on an exception or Ctrl-C.
"""

import random
import signal
import sys
import tempfile
import time

import zmq

from benchmarks.soak.checker import Windows, check_client, expected_for
from benchmarks.soak.clients import BacklogClient, PollClient, SSEClient, WebSocketClient
from benchmarks.soak.faults import KINDS, Faults
from benchmarks.soak.publishers import BroadcastPublisher, DirectPublisher, ZmqPublisher
from benchmarks.soak.report import Report
from services import protocol
from tests.stack import Stack, wait_for

ZMQ_CHANNEL = "soak-zmq"
HTTP_CHANNEL = "soak-http"
BULK_CHANNEL = "soak-bulk"
QUIET = 5.0  # the drain ends early when no client received anything for this long
FAULT_BOUND = 60.0  # the longest a fault can take (backlog: 15 s of publishing, 15 s of draining, the probe)


class Soak:
    """A soak run's settings and parts; ``run()`` returns the ``Report``."""

    def __init__(self, seconds=600, seed=None, interval=(20, 40), workdir=None, per_transport=2,
                 zmq_rate=40.0, http_rate=8.0, direct_rate=6.0, queue_size=100, drain=20.0,
                 kinds=KINDS, max_stall=15.0, say=None):
        self.seconds = seconds
        self.seed = random.randrange(1, 10**9) if seed is None else seed
        self.interval = interval
        self.workdir = workdir or tempfile.mkdtemp(prefix="bridge-soak-")
        self.per_transport = per_transport
        self.rates = (zmq_rate, http_rate, direct_rate)
        self.queue_size = queue_size
        self.drain_seconds = drain
        self.kinds = kinds
        self.max_stall = max_stall
        self.end = None
        self.say = say or (lambda text: print(text, file=sys.stderr, flush=True))
        self.busy_channels = (ZMQ_CHANNEL, HTTP_CHANNEL)
        self.stack = None
        self.clients = []
        self.backlog_client = None
        self.publishers = []
        self.bulk_publisher = None
        self.faults = None
        self.idle_made = 0

    def settings(self):
        return {"seed": self.seed, "seconds": self.seconds, "interval": self.interval,
                "queue_size": self.queue_size, "workdir": self.workdir, "max_stall": self.max_stall}

    # ------------------------------------------------------------------ run
    def run(self):
        self.say(f"soak: seed {self.seed} ({self.seconds:g} s, a fault every {self.interval[0]:g}-"
                 f"{self.interval[1]:g} s); logs in {self.workdir}")
        notes = []
        t0 = None
        try:
            self.start_stack()
            self.start_clients()
            t0 = time.monotonic()
            self.start_publishers()
            self.faults = Faults(self, random.Random(self.seed), self.interval, t0 + self.seconds - 5, self.kinds)
            self.faults.start()
            self.wait_until(t0 + self.seconds)
            self.faults.finish(FAULT_BOUND)
            for p in self.publishers:
                p.stop()
            for p in self.publishers:
                p.join(10)
            if not self.drain():
                self.say("drain: not everything arrived")
            self.end = time.monotonic()
            self.note_queues()
        except KeyboardInterrupt:
            notes.append("interrupted: the figures cover the run so far")
            self.say("soak: interrupted, tearing down")
        finally:
            self.teardown()
        if t0 is None:  # interrupted while starting: nothing to check
            raise KeyboardInterrupt()
        return self.check(t0, notes)

    def start_stack(self):
        env = {"BRIDGE_GATEWAY_WORKERS": "2", "BRIDGE_QUEUE_SIZE": str(self.queue_size),
               "BRIDGE_SSE_KEEPALIVE": "5", "BRIDGE_LOG_LEVEL": "INFO"}
        self.stack = Stack(self.workdir, env)
        self.stack.start("hub", "notifier", "gateway")
        self.stack.wait_ready(timeout=60)

    def start_clients(self):
        port = self.stack.http_port
        kinds = (("poll", PollClient), ("ws", WebSocketClient), ("sse", SSEClient))
        for i in range(self.per_transport):
            for prefix, kind in kinds:
                self.clients.append(kind(f"{prefix}-{i + 1}", port, self.busy_channels))
        self.backlog_client = BacklogClient("backlog", port, (BULK_CHANNEL,))
        for client in self.clients + [self.backlog_client]:
            client.start()
        for client in self.clients + [self.backlog_client]:
            wait_for(client.ready.is_set, 30, message=f"client {client.name} subscribed")

    def start_publishers(self):
        zmq_rate, http_rate, direct_rate = self.rates
        port = self.stack.http_port
        self.publishers = [
            ZmqPublisher("zmq", zmq_rate, self.stack.env["BRIDGE_NOTIFIER_RPC"], ZMQ_CHANNEL),
            BroadcastPublisher("http", http_rate, port, HTTP_CHANNEL),
            DirectPublisher("direct", direct_rate, port, self.clients),
        ]
        self.bulk_publisher = BroadcastPublisher("bulk", 1.0, port, BULK_CHANNEL)
        for p in self.publishers:
            p.start()

    def wait_until(self, end):
        next_note = time.monotonic() + 10
        while time.monotonic() < end:
            time.sleep(min(0.5, max(0.0, end - time.monotonic())))
            if time.monotonic() >= next_note:
                next_note += 10
                self.say(f"  {end - time.monotonic():.0f} s to go; published "
                         + ", ".join(f"{p.pub} {len(p.publications)}" for p in self.publishers)
                         + "; received " + ", ".join(f"{c.name} {len(c.log.keys)}" for c in self.clients))

    def all_publications(self):
        out = []
        for p in self.publishers + ([self.bulk_publisher] if self.bulk_publisher else []):
            out.extend(p.records())
        return out

    def drain(self):
        """After the publishers stop: wait until every client has all it should, or the drain deadline."""
        self.backlog_client.gate.set()
        pubs = self.all_publications()
        wanted = [(c, set(expected_for(c.log, pubs))) for c in self.clients + [self.backlog_client]]
        deadline = time.monotonic() + self.drain_seconds
        arrived, quiet_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            if all(c.log.has_all(keys) for c, keys in wanted):
                return True
            now_arrived = sum(len(c.log.arrivals) for c, _ in wanted)
            if now_arrived != arrived:
                arrived, quiet_since = now_arrived, time.monotonic()
            elif time.monotonic() - quiet_since > QUIET:
                return False  # nothing more is coming: what is missing was lost or is held back
            time.sleep(0.1)
        return False

    def note_queues(self):
        """Each client's ``next_seq``, asked of the hub itself (a gateway may be the broken part): what it still held."""
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        by_id = {}
        try:
            sock.connect(self.stack.env["BRIDGE_HUB_RPC"])
            for attempt in (1, 2, 3):
                sock.send_multipart(protocol.encode_request(protocol.OP_CLIENTS, attempt))
                deadline = time.monotonic() + 5
                while not by_id and sock.poll(max(0, int((deadline - time.monotonic()) * 1000))):
                    reply = protocol.decode_reply(sock.recv_multipart())
                    if reply.get("ok"):
                        by_id = {c["id"]: c for c in reply.get("clients", ())}
                if by_id:
                    break
        finally:
            sock.close()
        if not by_id:
            self.say("the hub did not list its clients: losses past the last seq received count as silent")
        for c in self.clients + [self.backlog_client]:
            entry = by_id.get(c.client_id)
            if entry is not None and c.log.sessions and c.log.sessions[-1] == c.client_id:
                c.log.final = {"next_seq": entry["next_seq"], "queue_depth": entry["queue_depth"]}

    # ------------------------------------------------------------- teardown
    def teardown(self):
        """End every thread and process this run started; safe to call at any point."""
        if self.faults is not None:
            self.faults.finish(FAULT_BOUND)
        for p in self.publishers:
            p.stop()
        for p in self.publishers:
            p.join(10)
        for p in self.publishers + ([self.bulk_publisher] if self.bulk_publisher else []):
            p.close()
        clients = self.clients + ([self.backlog_client] if self.backlog_client else [])
        for c in clients:
            c.stop()
        deadline = time.monotonic() + 15
        for c in clients:
            if c.is_alive():
                c.join(max(0.1, deadline - time.monotonic()))
        if self.stack is not None:
            if "hub" in self.stack.procs:
                self.stack.signal("hub", signal.SIGCONT)  # a stopped hub cannot act on SIGTERM
            self.stack.stop_all()
        if self.faults is not None:  # only now: its end would signal the processes it restarted
            self.faults.stop()
            self.faults.join(5)

    # ---------------------------------------------------------------- check
    def check(self, t0, notes):
        done = self.faults.done if self.faults is not None else []
        windows = Windows([(t0, "baseline")] + [(start, kind) for start, kind, _ in done])
        outcomes = {i + 1: outcome for i, (_, _, outcome) in enumerate(done)}
        pubs = self.all_publications()
        results = [check_client(c.log, pubs, windows, self.queue_size, self.end, self.max_stall)
                   for c in self.clients]
        # the backlog client reads only when a fault asks it to: no stall limit
        results.append(check_client(self.backlog_client.log, pubs, windows, self.queue_size))
        return Report(self.settings(), windows, outcomes, results, pubs, notes)
