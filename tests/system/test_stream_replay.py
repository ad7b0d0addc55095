"""The numbered notifier-to-hub stream against the real processes: hub kills lose nothing in silence.

A backend publishes a steady, numbered stream through the library (each
event acknowledged by the notifier); clients long-poll with ``ack``. The hub
is SIGKILLed several times mid-stream and restarted on the same store. Every
acknowledged event reaches every client exactly once and in order, or is
counted in its ``dropped``; a gap the notifier can no longer fill is counted
in ``dropped`` and in /metrics.
"""

import threading
import time

import pytest

from services.notifier.client import Publisher
from tests.stack import Stack, running, wait_for
from tests.system.notifier_support import handshake, wait_for_notifier

CHANNEL = "ticks"


class Reader(threading.Thread):
    """One client long-polling with ``ack`` until stopped; records each tick's ``n`` and the ``dropped`` total."""

    def __init__(self, stack, client_id):
        super().__init__(daemon=True)
        self.stack = stack
        self.client_id = client_id
        self.ticks = []
        self.dropped = 0
        self.last_seq = 0
        self.failures = 0
        self.stopping = False

    def run(self):
        while not self.stopping:
            try:
                r = self.stack.poll(self.client_id, wait=1, ack=self.last_seq, timeout=15)
            except OSError:
                r = None
            if r is None or r.status != 200:
                self.failures += 1  # the hub is away: the gateway says 503; ask again with the same ack
                time.sleep(0.05)
                continue
            self.dropped += r.json["dropped"]
            for message in r.json["messages"]:
                self.last_seq = message["seq"]
                if message["type"] == "tick":
                    self.ticks.append(message["n"])


def check(reader, accepted):
    """(lost in silence, duplicated, reordered) for one client, given the ns the notifier acknowledged."""
    seen = set(reader.ticks)
    duplicated = len(reader.ticks) - len(seen)
    reordered = sum(1 for a, b in zip(reader.ticks, reader.ticks[1:]) if b < a)
    missing = len([n for n in accepted if n not in seen])
    return max(0, missing - reader.dropped), duplicated, reordered


@pytest.fixture
def bridge(tmp_path):
    yield from running(tmp_path / "stream", {"BRIDGE_STATUS_INTERVAL": "0", "BRIDGE_QUEUE_SIZE": "5000"})


def test_hub_sigkills_mid_stream_lose_duplicate_and_reorder_nothing(bridge):
    publisher = Publisher(bridge.env["BRIDGE_NOTIFIER_RPC"], timeout=2.0, confirm=True)
    wait_for_notifier(bridge, publisher)
    readers = [Reader(bridge, handshake(bridge, channels=[CHANNEL])) for _ in range(3)]
    for reader in readers:
        reader.start()
    total, rate, kills = 4000, 400.0, 4
    accepted = []

    def publish():
        started = time.monotonic()
        for n in range(total):
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing a steady publisher, not waiting for a condition
            if publisher.broadcast({"type": "tick", "n": n}, channel=CHANNEL):
                accepted.append(n)

    sender = threading.Thread(target=publish, daemon=True)
    sender.start()
    try:
        for k in range(1, kills + 1):
            mark = k * total // (kills + 2)
            wait_for(lambda: all(len(r.ticks) >= mark for r in readers), 60, message=f"every reader past tick {mark}")
            bridge.kill("hub")
            bridge.start("hub")
            bridge.wait_ready(30)
        sender.join(60)
        assert not sender.is_alive()
        assert len(accepted) == total  # the notifier stayed up: it acknowledged every event
        wait_for(lambda: all(len(set(r.ticks)) + r.dropped >= total for r in readers), 60,
                 message="every reader to have every tick, or its count")
    finally:
        for reader in readers:
            reader.stopping = True
        for reader in readers:
            reader.join(20)
        publisher.close()
    for reader in readers:
        silent, duplicated, reordered = check(reader, accepted)
        assert (silent, duplicated, reordered) == (0, 0, 0), (reader.client_id, reader.dropped)
        assert reader.dropped == 0  # the queue never overflowed and the replay log held every gap
    status = bridge.get("/ws/status").json
    assert status["status"]["stream"]["lost"] == 0 and status["status"]["stream"]["lost_unknown"] == 0
    assert all(r.failures for r in readers)  # the kills were felt: each reader got 503s and went on


def test_a_gap_the_notifier_cannot_fill_is_counted_in_dropped_and_metrics(tmp_path):
    stack = Stack(tmp_path / "gap", {"BRIDGE_STATUS_INTERVAL": "0", "BRIDGE_QUEUE_SIZE": "5000",
                                     "BRIDGE_EVENTS_HOLD": "20", "BRIDGE_REPLAY_SIZE": "20"})
    stack.start("hub", "gateway", "notifier").wait_ready()
    try:
        publisher = Publisher(stack.env["BRIDGE_NOTIFIER_RPC"], timeout=2.0, confirm=True)
        wait_for_notifier(stack, publisher)
        watcher = handshake(stack, channels=[CHANNEL])
        bystander = handshake(stack, channels=["other"])
        assert publisher.broadcast({"type": "tick", "n": -1}, channel=CHANNEL)
        r = stack.poll(watcher, wait=5)
        assert [m["n"] for m in r.json["messages"]] == [-1]
        stack.stop("hub")  # its position (after tick -1) is in its store
        # While no hub listens the notifier holds 20 events; the 180 before them go, their target remembered.
        for n in range(200):
            assert publisher.broadcast({"type": "tick", "n": n}, channel=CHANNEL)
        stack.start("hub").wait_ready()
        got, dropped = [], 0
        deadline = time.monotonic() + 30
        while len(got) + dropped < 200:
            assert time.monotonic() < deadline, (len(got), dropped)
            r = stack.poll(watcher, wait=2)
            assert r.status == 200, r
            got.extend(m["n"] for m in r.json["messages"] if m["type"] == "tick")
            dropped += r.json["dropped"]
        assert got == list(range(180, 200)) and dropped == 180
        r = stack.poll(watcher, wait=0)
        assert r.json["messages"] == [] and r.json["dropped"] == 0
        clients = {c["id"]: c for c in stack.get("/ws/clients").json["clients"]}
        assert clients[watcher]["dropped"] == 180 and clients[bystander]["dropped"] == 0
        stream = stack.get("/ws/status").json["status"]["stream"]
        assert (stream["lost"], stream["lost_unknown"], stream["behind"]) == (180, 0, 0)
        metrics = stack.get("/metrics").raw.decode()
        assert 'bridge_stream_lost_total{attributed="yes"} 180.0' in metrics
        assert 'bridge_stream_lost_total{attributed="no"} 0.0' in metrics
        publisher.close()
    finally:
        stack.stop_all()
