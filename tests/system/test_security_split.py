"""Client secrets in a split deployment: the gateway and the hub started with different environments.

One rule, decided where a request enters: the gateway's BRIDGE_REQUIRE_CLIENT_SECRET
(on by default when the gateway listens off loopback). Before, the hub decided
from its own environment, so the setting on the gateway did nothing, and a
hub on another machine defaulted to off.
"""

import uuid

import pytest

from tests.stack import Stack
from tests.system.security_support import raw_request
from tests.system.transport_client import recv_frame, send_frame, ws_connect

TOKEN = "split-token-" + uuid.uuid4().hex

# (hub environment, gateway environment, secrets required?)
DEPLOYMENTS = {
    "set-on-gateway-only": ({}, {"BRIDGE_REQUIRE_CLIENT_SECRET": "1"}, True),
    "gateway-off-loopback": ({}, {"BRIDGE_HTTP_HOST": "0.0.0.0", "BRIDGE_ADMIN_TOKEN": TOKEN}, True),
    "off-loopback-but-turned-off": (
        {"BRIDGE_REQUIRE_CLIENT_SECRET": "1"},
        {"BRIDGE_HTTP_HOST": "0.0.0.0", "BRIDGE_ADMIN_TOKEN": TOKEN, "BRIDGE_REQUIRE_CLIENT_SECRET": "0"}, False),
    "set-on-hub-only": ({"BRIDGE_REQUIRE_CLIENT_SECRET": "1"}, {}, False),
}


@pytest.fixture(params=list(DEPLOYMENTS))
def split(request, tmp_path):
    hub_env, gateway_env, required = DEPLOYMENTS[request.param]
    stack = Stack(tmp_path)
    base = dict(stack.env)
    stack.env = dict(base, **hub_env)
    stack.start("hub")
    stack.env = dict(base, **gateway_env)
    stack.start("gateway").wait_ready()
    yield stack, required
    stack.stop_all()


def _call(stack, method, path, body=None, headers=()):
    hdrs = [("Host", f"127.0.0.1:{stack.http_port}")] + list(headers)
    if body is not None:
        hdrs.append(("Content-Type", "application/json"))
    return raw_request(stack.http_port, method, path, hdrs, body)


def test_one_rule_for_client_secrets_whatever_the_hub_environment(split):
    stack, required = split
    r = _call(stack, "POST", "/ws/handshake", {"client_type": "victim"})
    assert r.status == 200, r
    cid, secret = r.json["client_id"], r.json["client_secret"]
    assert stack.post("/ws/broadcast", {"message": {"type": "private"}}).status == 200
    unknown = _call(stack, "GET", f"/ws/poll?client_id={uuid.uuid4()}")

    # Everything another program could do with the id alone.
    attempts = [
        _call(stack, "GET", f"/ws/poll?client_id={cid}"),
        _call(stack, "GET", f"/ws/events?client_id={cid}&last_event_id=0"),
        _call(stack, "POST", "/ws/send", {"client_id": cid, "message": {"type": "ping"}}),
    ] if required else []
    if required:
        for r in attempts:
            assert (r.status, r.json) == (unknown.status, unknown.json), r  # 404 unknown_client: no oracle
            assert r.json["code"] == "unknown_client"
        with ws_connect(stack) as ws:
            send_frame(ws, {"type": "handshake", "client_type": "thief", "client_id": cid, "last_seq": 0})
            frame = recv_frame(ws)
            assert (frame["type"], frame["code"]) == ("error", "unknown_client"), frame
        r = _call(stack, "POST", "/ws/disconnect", {"client_id": cid})
        assert (r.status, r.json) == (unknown.status, unknown.json), r
        # A wrong secret is refused by the hub with the same answer.
        r = _call(stack, "GET", f"/ws/poll?client_id={cid}", headers=[("X-Client-Secret", "wrong")])
        assert (r.status, r.json) == (unknown.status, unknown.json), r
        # Nothing was taken: the owner still gets every message.
        r = _call(stack, "GET", f"/ws/poll?client_id={cid}", headers=[("X-Client-Secret", secret)])
        assert r.status == 200 and [m["type"] for m in r.json["messages"]] == ["connection_established", "private"]
    else:
        r = _call(stack, "GET", f"/ws/poll?client_id={cid}")
        assert r.status == 200 and [m["type"] for m in r.json["messages"]] == ["connection_established", "private"]
        r = _call(stack, "GET", f"/ws/poll?client_id={cid}", headers=[("X-Client-Secret", "wrong")])
        assert (r.status, r.json) == (unknown.status, unknown.json), r  # a given secret is always checked
    r = _call(stack, "POST", "/ws/disconnect", {"client_id": cid, "client_secret": secret})
    assert r.status == 200, r
