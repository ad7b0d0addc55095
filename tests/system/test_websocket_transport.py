"""The native WebSocket at /ws against the real gateway (2 workers) and hub: frames, replies, acks, readers."""

import json
import statistics
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.stack import wait_for
from tests.system.transport_client import (
    recv_frame, send_frame, ws_collect, ws_connect, ws_handshake, ws_request,
)


@pytest.fixture
def api(shared_stack):
    return shared_stack


def client_entry(api, client_id):
    return next(c for c in api.get("/ws/clients").json["clients"] if c["id"] == client_id)


def test_handshake_register_subscribe_ping_over_frames(api):
    with ws_connect(api) as ws:
        established = ws_handshake(ws, "dashboard")
        assert established["seq"] == 1 and established["resumed"] is False
        client_id = established["client_id"]
        reply, _ = ws_request(ws, {"type": "register", "client_type": "dashboard", "client_name": "Wall"})
        assert reply["type"] == "registration_confirmed" and reply["client_name"] == "Wall"
        reply, _ = ws_request(ws, {"type": "subscribe", "channels": ["jobs", "system"]})
        assert reply["type"] == "subscription_confirmed" and reply["subscriptions"] == ["jobs", "system"]
        reply, _ = ws_request(ws, {"type": "ping"})
        assert reply["type"] == "pong"
        reply, _ = ws_request(ws, {"type": "job_note", "text": "hello backends"})
        assert reply["type"] == "ack" and reply["received_type"] == "job_note"
        entry = wait_for(lambda: (e := client_entry(api, client_id))["polling"] and e, message="the parked stream poll")
        assert entry["transport"] == "websocket" and entry["connected"] is True
        assert entry["subscriptions"] == ["jobs", "system"]
        assert api.get("/ws/status").json["status"]["clients_by_transport"].get("websocket", 0) >= 1


def test_broadcasts_and_targeted_sends_arrive_as_frames_promptly(api):
    with ws_connect(api) as ws:
        client_id = ws_handshake(ws)["client_id"]
        ws_request(ws, {"type": "subscribe", "channels": ["jobs"]})
        snapshot = recv_frame(ws, 5)  # the latest state of jobs comes first, then live updates
        assert snapshot["type"] == "jobs_snapshot" and snapshot["channel"] == "jobs"
        latencies = []
        for n in range(10):
            started = time.monotonic()
            r = api.post("/ws/notify/job_progress", {"job_id": "j1", "progress": n * 10})
            assert r.status == 200 and r.json["delivered"] >= 1, r
            frame = recv_frame(ws, 5)
            latencies.append(time.monotonic() - started)
            assert frame["type"] == "job_progress" and frame["progress"] == n * 10 and frame["channel"] == "jobs"
        started = time.monotonic()
        assert api.post(f"/ws/send/{client_id}", {"message": {"type": "direct", "n": 1}}).status == 200
        frame = recv_frame(ws, 5)
        latencies.append(time.monotonic() - started)
        assert frame["type"] == "direct" and frame["seq"] > 1
        # Pushed, not polled: far below the 25 s hold (tight figures belong to benchmarks/).
        assert statistics.median(latencies) < 0.25 and max(latencies) < 2.0, latencies


def test_bad_frames_get_error_frames_and_the_connection_stays(api):
    with ws_connect(api) as ws:
        ws.send("not json")
        assert recv_frame(ws)["code"] == "bad_request"
        send_frame(ws, {"type": "ping"})  # before the handshake
        error = recv_frame(ws)
        assert error["type"] == "error" and error["success"] is False and error["field"] == "type"
        send_frame(ws, {"type": "handshake", "client_id": "no-such-client", "protocol_version": "1.0"})
        assert recv_frame(ws)["code"] == "unknown_client"
        send_frame(ws, {"type": "handshake", "protocol_version": "9.0"})
        assert recv_frame(ws)["code"] == "unsupported_version"
        ws.send(b"\x00binary")
        assert recv_frame(ws)["code"] == "bad_request"
        ws_handshake(ws)
        send_frame(ws, {"type": "ack", "seq": "x"})
        assert recv_frame(ws)["field"] == "seq"
        reply, _ = ws_request(ws, {"type": "subscribe", "channels": ["bad channel!"]})
        assert reply["type"] == "error" and reply["code"] == "bad_request"
        reply, _ = ws_request(ws, {"type": "handshake"})
        assert reply["code"] == "bad_request"
        assert ws_request(ws, {"type": "ping"})[0]["type"] == "pong"


def test_plain_http_get_on_ws_says_upgrade(api):
    r = api.get("/ws")
    assert r.status == 426 and r.json["success"] is False


def test_foreign_origin_is_refused(api):
    with pytest.raises(InvalidStatus) as info:
        ws_connect(api, origin="http://evil.example")
    assert info.value.response.status_code == 403


def test_acked_messages_are_not_redelivered_on_resume(api):
    with ws_connect(api) as ws:
        client_id = ws_handshake(ws)["client_id"]
        for n in range(6):
            assert api.post(f"/ws/send/{client_id}", {"message": {"type": "item", "n": n}}).status == 200
        frames = ws_collect(ws, 7)
        assert [f["seq"] for f in frames] == [2, 3, 4, 5, 6, 7]
        send_frame(ws, {"type": "ack", "seq": 4})
        wait_for(lambda: client_entry(api, client_id)["acked_seq"] == 4, message="the ack")
    with ws_connect(api) as ws:  # resume without last_seq: everything unacked again
        established = ws_handshake(ws, client_id=client_id)
        assert established["resumed"] is True and established["last_seq"] == 4
        assert [f["seq"] for f in ws_collect(ws, 7)] == [5, 6, 7]
    with ws_connect(api) as ws:  # resume with last_seq: it counts as an ack
        ws_handshake(ws, client_id=client_id, last_seq=6)
        assert [f["seq"] for f in ws_collect(ws, 7)] == [7]
        assert client_entry(api, client_id)["acked_seq"] == 6


def test_a_second_reader_replaces_the_first_with_a_clear_reason(api):
    with ws_connect(api) as first, ws_connect(api) as second:
        client_id = ws_handshake(first)["client_id"]
        ws_handshake(second, client_id=client_id)
        with pytest.raises(ConnectionClosed):
            while True:
                recv_frame(first, 5)
        assert first.close_code == 4001 and "superseded" in first.close_reason
        assert api.post(f"/ws/send/{client_id}", {"message": {"type": "item"}}).status == 200
        assert recv_frame(second, 5)["type"] == "item"
        # A long-poll takes the session over too; the WebSocket is told why.
        r = api.poll(client_id, wait=0, ack=1)
        assert r.status == 200
        with pytest.raises(ConnectionClosed):
            while True:
                recv_frame(second, 5)
        assert second.close_code == 4001
    assert client_entry(api, client_id)["transport"] == "poll"


def test_disconnect_frame_ends_the_session(api):
    with ws_connect(api) as ws:
        client_id = ws_handshake(ws)["client_id"]
        send_frame(ws, {"type": "disconnect"})
        with pytest.raises(ConnectionClosed):
            while True:
                recv_frame(ws, 5)
        assert ws.close_code == 1000
    assert api.poll(client_id).status == 404


def test_closing_the_socket_keeps_the_session_for_resume(api):
    with ws_connect(api) as ws:
        client_id = ws_handshake(ws)["client_id"]
    entry = wait_for(lambda: (e := client_entry(api, client_id)) and not e["connected"] and e,
                     message="the detached session")
    assert entry["transport"] == "websocket" and not entry["polling"]
    assert api.post(f"/ws/send/{client_id}", {"message": {"type": "while_away"}}).status == 200
    with ws_connect(api) as ws:
        ws_handshake(ws, client_id=client_id, last_seq=1)
        assert recv_frame(ws)["type"] == "while_away"


def test_permessage_deflate_only_when_offered(api):
    with ws_connect(api) as ws:
        assert "permessage-deflate" in ws.response.headers.get("Sec-WebSocket-Extensions", "")
        ws_handshake(ws)
    with ws_connect(api, compression=None) as ws:
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        client_id = ws_handshake(ws)["client_id"]
        big = {"type": "blob", "text": "x" * 5000}
        assert api.post(f"/ws/send/{client_id}", {"message": big}).status == 200
        assert json.loads(ws.recv(timeout=5))["text"] == big["text"]
