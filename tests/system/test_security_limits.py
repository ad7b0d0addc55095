"""Every limit at its edge and one past it, each with a clear 4xx in the seed's shape."""

import json
import socket
import time

import pytest

from services.messages import MessageError, check_depth
from tests.stack import Stack, wait_for
from tests.system.security_support import raw_exchange, raw_request

LIMITS = {
    "BRIDGE_MAX_BODY": "4096",
    "BRIDGE_MAX_MESSAGE_BYTES": "1024",
    "BRIDGE_MAX_CHANNELS_PER_SUBSCRIBE": "4",
    "BRIDGE_MAX_CHANNELS_PER_CLIENT": "6",
    "BRIDGE_SEND_RATE": "2",
    "BRIDGE_SEND_BURST": "8",
}


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("limits"), LIMITS)
    stack.start("hub", "gateway").wait_ready()
    yield stack
    stack.stop_all()


def refused(r, status, code=None):
    assert r.status == status, r
    assert r.json["success"] is False and r.json["error"], r
    if code:
        assert r.json["code"] == code, r
    assert b"Traceback" not in r.raw
    return r.json


def new_client(api):
    r = api.post("/ws/handshake", {"client_type": "limits"})
    assert r.status == 200, r
    return r.json["client_id"]


def send(api, cid, message):
    return api.post("/ws/send", {"client_id": cid, "message": message})


def _padded(size, extra=None):
    """A JSON object body of exactly ``size`` bytes."""
    base = dict(extra or {}, pad="")
    pad = size - len(json.dumps(base).encode())
    base["pad"] = "x" * pad
    data = json.dumps(base).encode()
    assert len(data) == size
    return data


def test_body_size_edge(api):
    headers = {"Content-Type": "application/json"}
    r = api.request("POST", "/ws/handshake", raw_body=_padded(4096), headers=headers)
    assert r.status == 200, r
    refused(api.request("POST", "/ws/handshake", raw_body=_padded(4097), headers=headers), 413, "too_large")


def test_a_huge_content_length_is_refused_before_the_body_is_read(api):
    port = api.http_port
    head = (f"POST /ws/broadcast HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {10 ** 9}\r\n\r\n{{").encode()
    started = time.monotonic()
    r = raw_exchange(port, head, timeout=5)  # we never send the gigabyte: the answer comes anyway
    assert r.status == 413 and json.loads(r.body)["code"] == "too_large"
    assert time.monotonic() - started < 5


def _nest(levels):
    message = {"type": "deep"}
    for _ in range(levels - 1):
        message = {"type": "deep", "inner": message}
    return message


def _deepest_allowed():
    for levels in range(2, 200):
        try:
            check_depth(_nest(levels))
        except MessageError:
            return levels - 1
    raise AssertionError("no depth limit")


def test_json_depth_edge_and_far_past_it(api):
    cid = new_client(api)
    edge = _deepest_allowed()
    assert send(api, cid, _nest(edge)).status == 200
    refused(send(api, cid, _nest(edge + 1)), 400)
    deep = b'{"client_id": "x", "message": ' + b"[" * 2000 + b"]" * 2000 + b"}"  # past orjson's 1024
    refused(api.request("POST", "/ws/send", raw_body=deep, headers={"Content-Type": "application/json"}), 400)


@pytest.mark.parametrize("raw", [
    b'{"client_type": "\\ud800"}',  # lone high surrogate
    b'{"client_type": "\\udc00x"}',  # lone low surrogate
    b'{"client_type": "a\\u0000b"}',  # NUL in a value
    b'{"client_type": "ok", "x\\u0000": 1}',  # NUL in a key
    b'{"client_type": "ok", "deep": [{"v": ["\\u0000"]}]}',
    b'{"client_type": "\xed\xa0\x80"}',  # a surrogate as raw UTF-8
])
def test_lone_surrogates_and_nul_are_refused(api, raw):
    before = api.get("/ws/status").json["status"]["clients"]
    refused(api.request("POST", "/ws/handshake", raw_body=raw, headers={"Content-Type": "application/json"}), 400)
    assert api.get("/ws/status").json["status"]["clients"] == before


def test_nul_in_a_query_parameter_and_escaped_backslash_u0000_is_fine(api):
    refused(api.get("/ws/poll?client_id=a%00b"), 400)
    r = api.request("POST", "/ws/handshake", raw_body=b'{"client_type": "ok", "note": "\\\\u0000"}',
                    headers={"Content-Type": "application/json"})
    assert r.status == 200, r  # a literal backslash followed by u0000 is not a NUL


def test_channel_name_length_and_charset(api):
    cid = new_client(api)
    ok = send(api, cid, {"type": "subscribe", "channels": ["c" * 64]})
    assert ok.status == 200, ok
    refused(send(api, cid, {"type": "subscribe", "channels": ["c" * 65]}), 400)
    for bad in ("bad channel", "a/b", "ümlaut", "-lead", "", "x\ny"):
        refused(send(api, cid, {"type": "subscribe", "channels": [bad]}), 400)
    refused(api.post("/ws/broadcast", {"message": {"type": "x"}, "channel": "c" * 65}), 400)


def test_channels_per_subscribe_and_per_client(api):
    cid = new_client(api)
    assert send(api, cid, {"type": "subscribe", "channels": ["a1", "a2", "a3", "a4"]}).status == 200
    refused(send(api, cid, {"type": "subscribe", "channels": ["b1", "b2", "b3", "b4", "b5"]}), 400)
    assert send(api, cid, {"type": "subscribe", "channels": ["b1", "b2"]}).status == 200  # 6 in all
    refused(send(api, cid, {"type": "subscribe", "channels": ["b3"]}), 400)
    r = api.get("/ws/clients").json["clients"]
    assert [c["subscriptions"] for c in r if c["id"] == cid] == [["a1", "a2", "a3", "a4", "b1", "b2"]]


def _message_of(size):
    message = {"type": "sized", "pad": ""}
    message["pad"] = "x" * (size - len(json.dumps(message, separators=(",", ":")).encode()))
    assert len(json.dumps(message, separators=(",", ":")).encode()) == size
    return message


def test_message_size_edge(api):
    cid = new_client(api)
    assert send(api, cid, _message_of(1024)).status == 200
    refused(send(api, cid, _message_of(1025)), 413, "too_large")
    assert api.post("/ws/broadcast", {"message": _message_of(1024)}).status == 200
    refused(api.post("/ws/broadcast", {"message": _message_of(1025)}), 413)


def test_send_rate_per_client_token_bucket(api):
    cid, other = new_client(api), new_client(api)
    for _ in range(8):  # the burst
        assert send(api, cid, {"type": "ping"}).status == 200
    body = refused(send(api, cid, {"type": "ping"}), 429, "rate_limited")
    r = send(api, cid, {"type": "ping"})
    assert r.status == 429 and int(r.headers["retry-after"]) >= 1, body
    assert send(api, other, {"type": "ping"}).status == 200  # another client has its own bucket
    wait_for(lambda: send(api, cid, {"type": "ping"}).status == 200, timeout=5, interval=0.2,
             message="the bucket to refill")


def test_total_clients_limit(tmp_path):
    stack = Stack(tmp_path, {"BRIDGE_MAX_CLIENTS": "3"}).start("hub", "gateway").wait_ready()
    try:
        for _ in range(3):
            assert stack.post("/ws/handshake", {}).status == 200
        r = stack.post("/ws/handshake", {})
        refused(r, 429, "too_many_clients")
        assert int(r.headers["retry-after"]) >= 1
    finally:
        stack.stop_all()


def test_handshake_rate_per_peer(tmp_path):
    stack = Stack(tmp_path, {"BRIDGE_HANDSHAKE_RATE": "1", "BRIDGE_HANDSHAKE_BURST": "4"})
    stack.start("hub", "gateway").wait_ready()
    try:
        for _ in range(4):
            assert stack.post("/ws/handshake", {}).status == 200
        # A forwarding header does not make a new peer: the gateway trusts no proxy.
        for spoof in ("X-Forwarded-For", "X-Real-IP", "Forwarded"):
            r = stack.post("/ws/handshake", {}, headers={spoof: "203.0.113.9"})
            refused(r, 429, "rate_limited")
        r = stack.post("/ws/handshake", {})
        refused(r, 429, "rate_limited")
        assert int(r.headers["retry-after"]) >= 1
        assert stack.get("/ws/status").json["status"]["clients"] == 4
        wait_for(lambda: stack.post("/ws/handshake", {}).status == 200, timeout=5, interval=0.2,
                 message="the handshake bucket to refill")
    finally:
        stack.stop_all()


def test_a_slow_client_cannot_hold_the_gateway(api):
    """A connection that sends half a request and stops does not block others."""
    port = api.http_port
    slow = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        slow.sendall(f"POST /ws/handshake HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 100\r\n".encode())
        r = raw_request(port, "GET", "/ws/status", [("Host", f"127.0.0.1:{port}")])
        assert r.status == 200
    finally:
        slow.close()
