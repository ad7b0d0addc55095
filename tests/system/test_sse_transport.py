"""Server-Sent Events at /ws/events against the real gateway (2 workers) and hub."""

import gzip
import json

import pytest

from tests.stack import Stack, wait_for
from tests.system.transport_client import HubPublisher, SSEStream

QUEUE = 20


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """2 workers, a short keepalive and a small queue, so the idle comment and overflow show quickly."""
    stack = Stack(tmp_path_factory.mktemp("sse"), {
        "BRIDGE_GATEWAY_WORKERS": "2", "BRIDGE_SSE_KEEPALIVE": "1", "BRIDGE_QUEUE_SIZE": str(QUEUE),
    })
    stack.start("hub", "gateway").wait_ready()
    yield stack
    stack.stop_all()


def client_entry(api, client_id):
    return next(c for c in api.get("/ws/clients").json["clients"] if c["id"] == client_id)


def send_items(api, client_id, first, count):
    for n in range(first, first + count):
        assert api.post(f"/ws/send/{client_id}", {"message": {"type": "item", "n": n}}).status == 200


def test_events_carry_seq_as_id_and_type_as_event(api):
    client_id = api.handshake("dashboard")
    stream = SSEStream(api, client_id)
    try:
        assert stream.status == 200 and stream.headers["content-type"].startswith("text/event-stream")
        assert "content-encoding" not in stream.headers
        assert stream.next()["retry"] == "2000"
        send_items(api, client_id, 0, 3)
        events = [stream.next_message() for _ in range(3)]
        assert [e["id"] for e in events] == [2, 3, 4]
        assert all(e["event"] == "item" for e in events)
        assert [e["data"]["n"] for e in events] == [0, 1, 2] and events[0]["data"]["seq"] == 2
        entry = wait_for(lambda: (e := client_entry(api, client_id))["polling"] and e, message="the parked poll")
        assert entry["transport"] == "sse" and entry["connected"]
        assert stream.next(5)["comment"] == "keepalive"  # 1 s idle in this stack
    finally:
        stream.close()


def test_resume_with_last_event_id_has_no_loss_and_no_duplicates(api):
    client_id = api.handshake("dashboard")
    seen = []
    stream = SSEStream(api, client_id)
    send_items(api, client_id, 0, 5)
    seen += [stream.next_message()["id"] for _ in range(3)]  # 2, 3, 4; 5 and 6 may be in flight
    stream.close()
    send_items(api, client_id, 5, 5)
    stream = SSEStream(api, client_id, last_event_id=seen[-1])
    seen += [stream.next_message()["id"] for _ in range(7)]
    stream.close()
    stream = SSEStream(api, client_id, query=f"last_event_id={seen[-1]}")  # a fresh EventSource's way
    send_items(api, client_id, 10, 1)
    seen.append(stream.next_message()["id"])
    stream.close()
    assert seen == list(range(2, 13))


def test_without_acks_delivered_messages_make_room_without_counting_as_lost(api):
    client_id = api.handshake("dashboard")
    stream = SSEStream(api, client_id)
    try:
        ids = []
        for batch in range(3):  # 3 x the queue bound, read as it comes
            send_items(api, client_id, batch * QUEUE, QUEUE)
            while len(ids) < (batch + 1) * QUEUE:
                event = stream.next_message()
                assert event["event"] == "item", event
                ids.append(event["id"])
        assert ids == list(range(2, 2 + 3 * QUEUE))
        assert client_entry(api, client_id)["dropped"] == 0
    finally:
        stream.close()
    # Reconnecting from an old id shows which delivered-then-evicted messages never arrived.
    last_seen = ids[-QUEUE - 6]  # 5 seqs between it and the oldest still queued
    stream = SSEStream(api, client_id, last_event_id=last_seen)
    try:
        lost = stream.next_message()
        assert lost["event"] == "messages_dropped" and lost["data"]["count"] == 5 and lost["id"] is None
        assert [stream.next_message()["id"] for _ in range(QUEUE)] == ids[-QUEUE:]
        assert client_entry(api, client_id)["dropped"] == 5
    finally:
        stream.close()


def test_a_new_reader_ends_the_old_stream_with_superseded(api):
    client_id = api.handshake("dashboard")
    first = SSEStream(api, client_id)
    try:
        assert first.next()["retry"] == "2000"
        wait_for(lambda: client_entry(api, client_id)["polling"], message="the first stream's poll")
        second = SSEStream(api, client_id)
        last = first.next_message()
        assert last["event"] == "superseded" and "another reader" in last["data"]["reason"]
        with pytest.raises(EOFError):
            first.next(5)
        send_items(api, client_id, 0, 1)
        assert second.next_message()["data"]["n"] == 0
        second.close()
    finally:
        first.close()


def test_disconnected_session_ends_the_stream(api):
    client_id = api.handshake("dashboard")
    stream = SSEStream(api, client_id)
    try:
        wait_for(lambda: client_entry(api, client_id)["polling"], message="the stream's poll")
        assert api.post("/ws/disconnect", {"client_id": client_id}).status == 200
        assert stream.next_message()["event"] == "closed"
    finally:
        stream.close()


def test_bad_requests_get_json_errors(api):
    r = api.get("/ws/events?client_id=nobody")
    assert r.status == 404 and r.json["code"] == "unknown_client"
    assert api.get("/ws/events").status == 400
    client_id = api.handshake("dashboard")
    r = api.get(f"/ws/events?client_id={client_id}", headers={"Last-Event-ID": "abc"})
    assert r.status == 400 and r.json["field"] == "Last-Event-ID"


def test_gzip_only_when_the_request_asks_for_it(api):
    client_id = api.handshake("dashboard")
    stream = SSEStream(api, client_id, gzip=True)
    try:
        assert stream.headers["content-encoding"] == "gzip"
        send_items(api, client_id, 0, 2)
        assert [stream.next_message()["data"]["n"] for _ in range(2)] == [0, 1]
    finally:
        stream.close()
    send_items(api, client_id, 2, 20)
    plain = api.poll(client_id, ack=3)
    headers = {k.lower(): v for k, v in plain.headers.items()}
    assert "content-encoding" not in headers and len(plain.json["messages"]) == 20
    packed = api.get(f"/ws/poll?client_id={client_id}&ack=3", headers={"Accept-Encoding": "gzip"})
    headers = {k.lower(): v for k, v in packed.headers.items()}
    assert headers["content-encoding"] == "gzip" and "Accept-Encoding" in headers["vary"]
    assert len(packed.raw) < len(plain.raw)
    assert json.loads(gzip.decompress(packed.raw))["messages"] == plain.json["messages"]


def test_publisher_fan_out_reaches_sse_and_poll_alike(api):
    sse_client = api.handshake("dashboard")
    poll_client = api.handshake("lightroom")
    stream = SSEStream(api, sse_client)
    publisher = HubPublisher(api)
    try:
        publisher.publish([{"type": "system_status", "status": {"cpu": n}} for n in range(5)])
        assert [stream.next_message()["data"]["status"]["cpu"] for _ in range(5)] == list(range(5))
        polled = api.poll(poll_client).json["messages"]
        assert [m["status"]["cpu"] for m in polled] == list(range(5))
    finally:
        publisher.close()
        stream.close()
