"""Idle subscribers cost memory only: their full queues do not starve active clients (issue 13, point 2).

Two hundred clients subscribe and never poll again (each closed dashboard tab
is one until the stale timeout), so every message overflows their queues;
three clients long-poll the same channel and acknowledge. A backend publishes
a steady, bounded stream over ZeroMQ, each payload numbered: the active
clients get every number once, in order, with no poll refused. Making room in
a full queue used to scan it for every message and every idle client, and the
hub fell so far behind that active clients lost a third or more.
"""

import threading
import time
import http.client
import json

import pytest

from services.notifier.client import Publisher
from tests.stack import Stack
from tests.system.notifier_support import handshake, wait_for_notifier

IDLE = 200
ACTIVE = 3
QUEUE = 1000
COUNT = 3000  # the first QUEUE fill the idle queues; every later one overflows each of them
RATE = 250.0  # a second


@pytest.fixture
def bridge(tmp_path):
    stack = Stack(tmp_path / "stack", {
        "BRIDGE_STATUS_INTERVAL": "0", "BRIDGE_QUEUE_SIZE": str(QUEUE),
        "BRIDGE_HANDSHAKE_RATE": "0", "BRIDGE_SEND_RATE": "0",  # 203 clients from one address
    })
    stack.start("hub", "gateway", "notifier").wait_ready()
    publisher = Publisher(environ=stack.env, timeout=5.0, raise_on_drop=True)
    wait_for_notifier(stack, publisher)
    yield stack, publisher
    publisher.close()
    stack.stop_all()


class Reader(threading.Thread):
    """A long-polling client that acknowledges what it got, until it has ``COUNT`` numbers or time runs out."""

    def __init__(self, stack, client_id, deadline):
        super().__init__(daemon=True)
        self.port, self.client_id, self.deadline = stack.http_port, client_id, deadline
        self.numbers, self.statuses, self.dropped, self.errors = [], [], 0, []

    def run(self):
        ack = 0
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            while len(self.numbers) < COUNT and time.monotonic() < self.deadline:
                conn.request("GET", f"/ws/poll?client_id={self.client_id}&wait=2&ack={ack}")
                resp = conn.getresponse()
                body = resp.read()
                self.statuses.append(resp.status)
                if resp.status != 200:
                    continue
                reply = json.loads(body)
                self.dropped += reply["dropped"]
                for message in reply["messages"]:
                    ack = max(ack, message["seq"])
                    if message["type"] == "numbered":
                        self.numbers.append(message["n"])
        except Exception as ex:  # reported by the test, with what arrived
            self.errors.append(repr(ex))
        finally:
            conn.close()


def test_two_hundred_idle_subscribers_do_not_cost_active_clients_a_message(bridge):
    stack, publisher = bridge
    idle = [handshake(stack, "dashboard", ["photos"]) for _ in range(IDLE)]
    active = [handshake(stack, "lightroom", ["photos"]) for _ in range(ACTIVE)]
    deadline = time.monotonic() + COUNT / RATE + 60
    readers = [Reader(stack, client_id, deadline) for client_id in active]
    for reader in readers:
        reader.start()
    start = time.monotonic()
    for n in range(COUNT):  # a steady stream, as a backend sends it
        pause = start + n / RATE - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        publisher.broadcast({"type": "numbered", "n": n}, channel="photos")
    for reader in readers:
        reader.join(max(1.0, deadline - time.monotonic()))
    for reader in readers:
        assert not reader.errors, reader.errors
        assert reader.numbers == list(range(COUNT)), (
            f"{reader.client_id}: {len(reader.numbers)} of {COUNT}, dropped {reader.dropped}, "
            f"statuses {sorted(set(reader.statuses))}")
        assert reader.dropped == 0
        assert set(reader.statuses) == {200}
    clients = {c["id"]: c for c in stack.get("/ws/clients").json["clients"]}
    # The idle ones were full all along: each lost exactly what did not fit, and says so.
    for client_id in idle:
        assert clients[client_id]["queue_depth"] == QUEUE
        assert clients[client_id]["dropped"] == COUNT - QUEUE
