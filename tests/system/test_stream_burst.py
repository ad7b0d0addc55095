"""Stream readers are handed messages as they are queued (real hub and gateway), per transport.

A burst larger than the client's queue, published in one go, reaches a
WebSocket or SSE reader that keeps up; a reader that stops reading loses
messages, and then the seqs it never sees add up exactly to the
``messages_dropped`` counts it is told.
"""

import json
import socket
import time

import pytest

from tests.stack import Stack, wait_for
from tests.system.transport_client import HubPublisher, SSEStream, recv_frame, ws_connect, ws_handshake

QUEUE = 100
BURST = 300


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("burst"), {"BRIDGE_GATEWAY_WORKERS": "2", "BRIDGE_QUEUE_SIZE": str(QUEUE)})
    stack.start("hub", "gateway").wait_ready()
    yield stack
    stack.stop_all()


@pytest.fixture
def publisher(api):
    pub = HubPublisher(api)
    yield pub
    pub.close()


def entry(api, client_id):
    return next(c for c in api.get("/ws/clients").json["clients"] if c["id"] == client_id)


def burst(publisher, client_id, count, size=0, first=0):
    """``count`` messages for one client, all sent before the hub answers any (one or two hub loop turns)."""
    publisher.publish([{"type": "item", "n": n, "pad": "x" * size} for n in range(first, first + count)],
                      target="client", to=client_id)


def check_exact(seqs, dropped):
    """Seqs strictly increase, and the ones missing between the first and the last are exactly ``dropped``."""
    assert seqs == sorted(set(seqs))
    assert seqs[-1] - seqs[0] + 1 - len(seqs) == dropped


def test_websocket_reader_gets_a_whole_burst_larger_than_its_queue(api, publisher):
    with ws_connect(api) as ws:
        client_id = ws_handshake(ws)["client_id"]
        api.wait_parked(client_id)
        burst(publisher, client_id, BURST)
        frames = []
        while len([f for f in frames if f["type"] == "item"]) < BURST:
            frames.append(recv_frame(ws, 20))
    assert [f["n"] for f in frames if f["type"] == "item"] == list(range(BURST))
    assert not [f for f in frames if f["type"] == "messages_dropped"]
    assert entry(api, client_id)["dropped"] == 0


def test_sse_reader_gets_a_whole_burst_larger_than_its_queue(api, publisher):
    client_id = api.handshake("dashboard")
    stream = SSEStream(api, client_id, last_event_id=1)
    try:
        api.wait_parked(client_id)
        burst(publisher, client_id, BURST)
        events = []
        while len([e for e in events if e["event"] == "item"]) < BURST:
            events.append(stream.next_message(20))
    finally:
        stream.close()
    assert [e["data"]["n"] for e in events if e["event"] == "item"] == list(range(BURST))
    assert not [e for e in events if e["event"] == "messages_dropped"]
    assert entry(api, client_id)["dropped"] == 0


def stall_until_lost(api, publisher, client_id):
    """Publish bursts of 8 KB messages to a reader that does not read, until its queue has lost some."""
    sent = 0
    deadline = time.monotonic() + 60
    while entry(api, client_id)["dropped"] == 0:
        assert time.monotonic() < deadline, "the queue never overflowed"
        burst(publisher, client_id, 200, size=8000, first=sent)
        sent += 200
    publisher.publish([{"type": "end"}], target="client", to=client_id)
    return sent


def test_a_websocket_reader_that_stops_reading_is_told_exactly_what_it_lost(api, publisher):
    # The client library stops reading the socket once 4 frames wait unread: TCP backs up to the gateway.
    with ws_connect(api, max_queue=4) as ws:
        client_id = ws_handshake(ws)["client_id"]
        api.wait_parked(client_id)
        stall_until_lost(api, publisher, client_id)
        frames = []
        while not frames or frames[-1]["type"] != "end":
            frames.append(recv_frame(ws, 20))
    seqs = [f["seq"] for f in frames if "seq" in f]
    dropped = sum(f["count"] for f in frames if f["type"] == "messages_dropped")
    assert dropped > 0
    check_exact(seqs, dropped)
    assert entry(api, client_id)["dropped"] == dropped


def test_an_sse_reader_that_stops_reading_is_told_exactly_what_it_lost(api, publisher):
    client_id = api.handshake("dashboard")
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: the gateway backs up soon
    raw.connect(("127.0.0.1", api.http_port))
    raw.sendall(f"GET /ws/events?client_id={client_id}&last_event_id=1 HTTP/1.1\r\nHost: 127.0.0.1:{api.http_port}\r\n"
                f"Accept: text/event-stream\r\n\r\n".encode())
    try:
        api.wait_parked(client_id)
        stall_until_lost(api, publisher, client_id)  # not one recv() meanwhile
        raw.settimeout(20)
        data = b""
        while b"event: end\n" not in data:
            chunk = raw.recv(1 << 20)
            assert chunk, "the event stream ended early"
            data += chunk
    finally:
        raw.close()
    seqs, dropped = [], 0
    for line in data.split(b"\n"):
        if line.startswith(b"id: "):
            seqs.append(int(line[4:]))
        elif line.startswith(b"data: {\"count\""):
            dropped += json.loads(line[6:])["count"]
    assert dropped > 0
    check_exact(seqs, dropped)
    assert entry(api, client_id)["dropped"] == dropped


def test_long_lived_sse_readers_that_never_ack_keep_getting_keyed_messages_after_a_restart(stack_factory):
    """The report of a minutes-long SSE reader: seq 1-100, then only a few of the next 83, with drops.

    A reader that never acks keeps a full queue of messages it already has.
    Each newcomer then found a full queue and went to conflation, which, with
    no undelivered keyed message to replace, dropped a keyed newcomer
    (``system_status``, ``job_progress``) itself, and counted it. Sessions
    restored after a hub restart (docs/DURABILITY.md) and several readers at
    once, as reported; the messages come one at a time, as a sampler sends them.
    """
    stack = stack_factory({"BRIDGE_QUEUE_SIZE": str(QUEUE), "BRIDGE_GATEWAY_WORKERS": "2"})
    publisher = HubPublisher(stack)
    clients = [stack.handshake("dashboard") for _ in range(3)]
    try:
        for client_id in clients:  # a full queue for each, before the restart
            burst(publisher, client_id, QUEUE)
        publisher.close()
        stack.stop("hub")
        stack.start("hub")
        wait_for(lambda: stack.get("/ws/status").status == 200, timeout=20, message="the restarted hub")
        publisher = HubPublisher(stack)
        streams = [SSEStream(stack, client_id) for client_id in clients]  # no Last-Event-ID, as curl
        for client_id, stream in zip(clients, streams):
            first = [stream.next_message(20) for _ in range(QUEUE)]
            assert first[-1]["data"]["n"] == QUEUE - 1, first[-1]
            stack.wait_parked(client_id)
        for n in range(83):
            for client_id in clients:
                kind = "system_status" if n % 2 else "job_progress"
                publisher.publish([{"type": kind, "job_id": "j1", "progress": n, "status": {"cpu": n}}],
                                  target="client", to=client_id)
        for client_id, stream in zip(clients, streams):
            events = [stream.next_message(20) for _ in range(83)]
            assert [e["data"]["progress"] for e in events] == list(range(83))
            entry_now = entry(stack, client_id)
            assert entry_now["dropped"] == 0 and entry_now["acked_seq"] == 1 and entry_now["queue_depth"] == QUEUE
            stream.close()
    finally:
        publisher.close()
