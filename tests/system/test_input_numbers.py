"""One rule for every number a client sends, on every route and transport (docs/PROTOCOL.md, "Numbers").

An integer must fit in 64 bits (-2^63 to 2^64-1, what msgpack carries to the
hub); a counter (ack, seq, last_seq, Last-Event-ID) is also at least 0; any
other number is finite. Outside that: 400 naming the field, never a 500,
never a value changed in silence. Inside it: kept exact end to end.
"""

import pytest

from services.messages import MessageError
from services.notifier.client import Publisher
from tests.stack import Stack
from tests.system.security_support import raw_exchange
from tests.system.notifier_support import collect, handshake, has, wait_for_notifier
from tests.system.transport_client import recv_frame, send_frame, ws_connect, ws_handshake

TOO_BIG = 2 ** 64  # 18446744073709551616: the packer's OverflowError was a 500 here
WIDE = 99999999999999999999999  # orjson read it as 1e+23
BIGGEST = 2 ** 64 - 1
SMALLEST = -(2 ** 63)


@pytest.fixture(scope="module")
def bridge(tmp_path_factory):
    """Hub, notifier and gateway (2 workers) for the whole module."""
    stack = Stack(tmp_path_factory.mktemp("numbers"), {"BRIDGE_GATEWAY_WORKERS": "2"})
    stack.start("hub", "notifier", "gateway").wait_ready()
    yield stack
    stack.stop_all()


def refused(r, field):
    assert r.status == 400, r
    assert r.json["success"] is False and r.json["code"] == "bad_request" and r.json["field"] == field, r.json
    assert b"Traceback" not in r.raw and b"Overflow" not in r.raw


@pytest.mark.parametrize("query,field", [
    (f"ack={TOO_BIG}", "ack"),
    (f"ack={WIDE}", "ack"),
    ("ack=" + "9" * 400, "ack"),
    ("ack=-1", "ack"),
    ("ack=1e3", "ack"),
    ("ack=%D9%A3", "ack"),  # an Arabic-Indic three: int() would take it
    ("ack=1_000", "ack"),
    ("wait=1e400", "wait"),
    ("wait=nan", "wait"),
    ("wait=-inf", "wait"),
    ("wait=-1", "wait"),
])
def test_poll_query_numbers_outside_the_rule_are_400_naming_the_field(bridge, query, field):
    client_id = bridge.handshake()
    refused(bridge.get(f"/ws/poll?client_id={client_id}&{query}"), field)


def test_the_largest_ack_is_accepted(bridge):
    client_id = bridge.handshake()
    r = bridge.get(f"/ws/poll?client_id={client_id}&ack={BIGGEST}")
    assert r.status == 200 and r.json["messages"] == [], r
    assert bridge.get(f"/ws/poll?client_id={client_id}&ack=18446744073709551615").status == 200


@pytest.mark.parametrize("path,body,field", [
    ("/ws/broadcast", {"message": {"type": "x", "n": WIDE}}, "message.n"),
    ("/ws/broadcast", {"message": {"type": "x", "deep": {"list": [1, 2, -TOO_BIG]}}}, "message.deep.list[2]"),
    ("/ws/broadcast", {"message": {"type": "x", "n": TOO_BIG}}, "message.n"),
    ("/ws/notify/job_progress", {"job_id": WIDE, "progress": 5}, "job_id"),
    ("/ws/notify/job_progress", {"job_id": "j", "progress": TOO_BIG}, "progress"),
    ("/ws/cleanup", {"timeout_minutes": WIDE}, "timeout_minutes"),
    ("/ws/cleanup", {"timeout_minutes": -1}, "timeout_minutes"),
    ("/ws/handshake", {"client_type": "x", "extra": TOO_BIG}, "extra"),
])
def test_body_integers_outside_64_bits_are_400_naming_the_field(bridge, path, body, field):
    before = bridge.get("/ws/status").json["status"]["messages"]["published"]
    refused(bridge.post(path, body), field)
    assert bridge.get("/ws/status").json["status"]["messages"]["published"] == before  # nothing went out


@pytest.mark.parametrize("length", [str(TOO_BIG), str(WIDE), "-1", "1e3"])
def test_a_content_length_outside_the_rule_gets_the_json_error_shape(bridge, length):
    request = (f"POST /ws/broadcast HTTP/1.1\r\nHost: 127.0.0.1:{bridge.http_port}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n{{}}").encode()
    r = raw_exchange(bridge.http_port, request)
    assert r.status == 400 and r.json == {"success": False, "error": r.json["error"], "code": "bad_request"}, r


def test_send_refuses_a_wide_integer_and_keeps_the_widest_exact(bridge):
    client_id = bridge.handshake(channels=["nums"])
    refused(bridge.post("/ws/send", {"client_id": client_id, "message": {"type": "note", "n": WIDE}}), "message.n")
    message = {"type": "exact", "big": BIGGEST, "small": SMALLEST, "float": 1e23}
    assert bridge.post("/ws/broadcast", {"channel": "nums", "message": message}).status == 200
    got = collect(bridge, client_id, has("type", "exact"))
    exact = [m for m in got if m["type"] == "exact"][0]
    assert (exact["big"], exact["small"], exact["float"]) == (BIGGEST, SMALLEST, 1e23)
    assert isinstance(exact["big"], int) and isinstance(exact["float"], float)


def test_sse_last_event_id_follows_the_same_rule(bridge):
    client_id = bridge.handshake()
    for value in (str(TOO_BIG), str(WIDE), "-1", "1.5"):
        refused(bridge.get(f"/ws/events?client_id={client_id}", headers={"Last-Event-ID": value}), "Last-Event-ID")
        refused(bridge.get(f"/ws/events?client_id={client_id}&last_event_id={value}"), "last_event_id")


def test_websocket_frames_follow_the_same_rule(bridge):
    with ws_connect(bridge) as ws:
        send_frame(ws, {"type": "handshake", "client_type": "x", "client_id": "nobody", "last_seq": TOO_BIG})
        error = recv_frame(ws)
        assert (error["type"], error["code"], error["field"]) == ("error", "bad_request", "last_seq"), error
        established = ws_handshake(ws, "numbers")
        assert established["type"] == "connection_established"
        for frame, field in (({"type": "ack", "seq": TOO_BIG}, "seq"), ({"type": "ack", "seq": -1}, "seq"),
                             ({"type": "note", "data": {"n": WIDE}}, "data.n"), ({"type": "ping", "ref": WIDE}, "ref")):
            send_frame(ws, frame)
            error = recv_frame(ws)
            assert (error["type"], error["code"], error["field"]) == ("error", "bad_request", field), error
        send_frame(ws, {"type": "ping", "ref": 7})
        assert recv_frame(ws)["type"] == "pong"  # the connection lived through all of it


def test_backend_library_refuses_wide_integers_and_the_ingest_path_keeps_64_bit_ones_exact(bridge):
    publisher = Publisher(environ=bridge.env, timeout=5)
    try:
        with pytest.raises(MessageError) as wide:
            publisher.broadcast({"type": "x", "payload": {"n": [WIDE]}}, channel="nums")
        assert wide.value.field == "payload.n[0]"
        with pytest.raises(MessageError) as progress:
            publisher.job_progress("j1", 50, total=TOO_BIG)
        assert progress.value.field == "total"
        wait_for_notifier(bridge, publisher)
        client_id = handshake(bridge, channels=["nums"])
        assert publisher.broadcast({"type": "exact", "big": BIGGEST, "small": SMALLEST}, channel="nums")
        got = collect(bridge, client_id, has("type", "exact"))
        exact = [m for m in got if m["type"] == "exact"][0]
        assert (exact["big"], exact["small"]) == (BIGGEST, SMALLEST)
    finally:
        publisher.close()
