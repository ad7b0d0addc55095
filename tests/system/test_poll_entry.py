"""``GET /ws/poll`` is served ahead of Falcon (services/gateway/fastpoll.py): it answers exactly as Falcon's route.

``/ws/poll/`` (a trailing slash) still goes through Falcon to the same
resource, so each request is sent both ways and the answers compared:
status, body (but the timestamp), and the headers a client reads.
"""

import gzip
import json
import uuid

import pytest

ORIGIN = "http://dashboard.example"
COMPARED = ("content-type", "content-encoding", "vary", "access-control-allow-origin", "retry-after")


@pytest.fixture
def bridge(stack_factory):
    return stack_factory({"BRIDGE_ALLOWED_ORIGINS": ORIGIN})


def _shape(r):
    body = gzip.decompress(r.raw) if r.headers.get("content-encoding") == "gzip" else r.raw
    data = json.loads(body)
    data.pop("timestamp", None)
    return r.status, data, {name: r.headers.get(name) for name in COMPARED}


def _both(bridge, query, headers=None):
    fast = bridge.get(f"/ws/poll?{query}", headers=headers)
    framework = bridge.get(f"/ws/poll/?{query}", headers=headers)
    assert _shape(fast) == _shape(framework), (query, headers, fast, framework)
    return fast


def test_poll_answers_match_falcons_route(bridge):
    cid = bridge.handshake()
    big = {"type": "note", "text": "x" * 600}
    assert bridge.post(f"/ws/send/{cid}", {"message": big}).status == 200
    # acknowledged polls keep what they return, so both entries see the same messages
    r = _both(bridge, f"client_id={cid}&ack=0&wait=0")
    assert r.status == 200 and r.json["success"] is True and r.json["messages"][0]["text"] == big["text"]
    assert r.headers["vary"] == "Accept-Encoding" and "content-encoding" not in r.headers
    r = _both(bridge, f"client_id={cid}&ack=0", {"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"
    r = _both(bridge, f"client_id={cid}&ack=0", {"Origin": ORIGIN})
    assert r.headers["access-control-allow-origin"] == ORIGIN and r.headers["vary"] == "Accept-Encoding, Origin"
    # repeated parameters: the last one counts, as Falcon reads them
    assert _both(bridge, f"client_id=nobody&client_id={cid}&ack=0").status == 200


@pytest.mark.parametrize("query, headers, status, code", [
    ("wait=1", None, 400, "bad_request"),
    ("client_id=a%00b", None, 400, "bad_request"),
    ("client_id={cid}&wait=-1", None, 400, "bad_request"),
    ("client_id={cid}&wait=nan", None, 400, "bad_request"),
    ("client_id={cid}&ack=1.5", None, 400, "bad_request"),
    ("client_id={cid}&ack=99999999999999999999", None, 400, "bad_request"),
    ("client_id={unknown}", None, 404, "unknown_client"),
    ("client_id={cid}&client_secret=wrong", None, 404, "unknown_client"),
    ("client_id={cid}", {"X-Client-Secret": "wrong"}, 404, "unknown_client"),
    ("client_id={cid}", {"Origin": "http://evil.example"}, 403, "forbidden"),
    ("client_id={cid}", {"Sec-Fetch-Site": "cross-site"}, 403, "forbidden"),
    ("client_id={cid}", {"Host": "evil.example"}, 421, "misdirected"),
])
def test_poll_refusals_match_falcons_route(bridge, query, headers, status, code):
    cid = bridge.handshake()
    query = query.format(cid=cid, unknown=uuid.uuid4())
    if headers and "Host" in headers:
        headers = {"Host": f"{headers['Host']}:{bridge.http_port}"}
    r = _both(bridge, query, headers)
    assert r.status == status and r.json["success"] is False and r.json["code"] == code, r
