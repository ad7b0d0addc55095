"""Cross-site writes: what a web page can send is refused, and no hub counter moves."""

import pytest

from tests.system.security_support import ROUTES, counters, raw_request

DASHBOARD = "http://127.0.0.1:8765"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    from tests.stack import Stack
    stack = Stack(tmp_path_factory.mktemp("xsite"), {"BRIDGE_ALLOWED_ORIGINS": DASHBOARD})
    stack.start("hub", "gateway").wait_ready()
    yield stack
    stack.stop_all()


POSTS = [r for r in ROUTES if r[0] == "POST"]


def _post(api, path, headers, body):
    return raw_request(api.http_port, "POST", path, [("Host", f"127.0.0.1:{api.http_port}")] + headers, body)


# (headers, body, status): what browsers send for forms, "simple" fetches and cross-origin requests.
MATRIX = [
    ([("Content-Type", "application/x-www-form-urlencoded")], b"client_type=evil", 415),
    ([("Content-Type", "multipart/form-data; boundary=x")], b"--x\r\n\r\nv\r\n--x--\r\n", 415),
    ([("Content-Type", "text/plain")], b'{"client_type": "evil"}', 415),
    ([], b'{"client_type": "evil"}', 415),  # no Content-Type (Falcon would otherwise parse it as JSON)
    ([("Content-Type", "application/jsonp")], b"{}", 415),
    ([("Content-Type", "application/json"), ("Origin", "http://evil.example")], b"{}", 403),
    ([("Content-Type", "application/json"), ("Origin", "null")], b"{}", 403),
    ([("Content-Type", "application/json"), ("Origin", "http://localhost:3000")], b"{}", 403),
    ([("Content-Type", "application/json"), ("Sec-Fetch-Site", "cross-site")], b"{}", 403),
    ([("Content-Type", "application/json"), ("Sec-Fetch-Site", "same-site")], b"{}", 403),
    ([("Content-Type", "text/plain"), ("Origin", "http://evil.example"), ("Sec-Fetch-Site", "cross-site")],
     b"{}", 403),
]


@pytest.mark.parametrize("method,path,body", POSTS, ids=[p for _, p, _ in POSTS])
def test_cross_site_matrix_refused_with_counters_unchanged(api, method, path, body):
    before = counters(api)
    for headers, raw, status in MATRIX:
        r = _post(api, path, headers, raw)
        assert r.status == status, (headers, r)
        assert r.json["success"] is False and r.json["code"] in ("unsupported_media_type", "forbidden")
        assert "access-control-allow-origin" not in r.headers
    assert counters(api) == before


def test_same_origin_and_programs_without_origin_are_served(api):
    port = api.http_port
    for origin in (None, f"http://127.0.0.1:{port}", f"http://localhost:{port}"):
        headers = [("Content-Type", "application/json; charset=utf-8")]
        if origin:
            headers.append(("Origin", origin))
        r = _post(api, "/ws/handshake", headers, b'{"client_type": "script"}')
        assert r.status == 200, (origin, r)
        assert "access-control-allow-origin" not in r.headers
    r = _post(api, "/ws/handshake", [("Content-Type", "application/json"), ("Sec-Fetch-Site", "none")], b"{}")
    assert r.status == 200, r


def test_no_cors_by_default_and_only_the_configured_origin_is_opted_in(api):
    port = api.http_port
    host = ("Host", f"127.0.0.1:{port}")
    preflight = [host, ("Origin", "http://evil.example"), ("Access-Control-Request-Method", "POST"),
                 ("Access-Control-Request-Headers", "content-type"),
                 ("Access-Control-Request-Private-Network", "true")]
    r = raw_request(port, "OPTIONS", "/ws/handshake", preflight)
    assert r.status == 403
    assert not any(h.startswith("access-control-") for h in r.headers), r.headers

    preflight = [host, ("Origin", DASHBOARD), ("Access-Control-Request-Method", "POST"),
                 ("Access-Control-Request-Headers", "content-type"),
                 ("Access-Control-Request-Private-Network", "true")]
    r = raw_request(port, "OPTIONS", "/ws/status", preflight)
    assert r.status == 200, r
    assert r.headers["access-control-allow-origin"] == DASHBOARD
    assert "access-control-allow-private-network" not in r.headers
    r = raw_request(port, "GET", "/ws/status", [host, ("Origin", DASHBOARD), ("Sec-Fetch-Site", "cross-site")])
    assert r.status == 200 and r.headers["access-control-allow-origin"] == DASHBOARD
    assert "origin" in r.headers.get("vary", "").lower()
    for method, path, body in ROUTES:
        headers = [host] + ([("Content-Type", "application/json")] if body is not None else [])
        r = raw_request(port, method, path, headers, body)
        assert r.headers.get("access-control-allow-origin") in (None,), (path, r.headers)


def test_cross_site_reads_are_refused_too(api):
    """An <img> or <script> tag cannot make the gateway dequeue a poll: Sec-Fetch-Site gives it away."""
    cid = api.handshake()
    api.post("/ws/broadcast", {"message": {"type": "kept"}})
    port = api.http_port
    r = raw_request(port, "GET", f"/ws/poll?client_id={cid}",
                    [("Host", f"127.0.0.1:{port}"), ("Sec-Fetch-Site", "cross-site")])
    assert r.status == 403
    assert [m["type"] for m in api.poll(cid).json["messages"]] == ["kept"]
