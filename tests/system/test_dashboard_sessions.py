"""The dashboard's kind of session over plain HTTP: ``ephemeral: true`` ends with its stream; others stay."""

import http.client

from tests.stack import wait_for


def open_stream(stack, client_id):
    """An SSE connection that has started (its first bytes read); the caller closes it."""
    conn = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=10)
    conn.request("GET", f"/ws/events?client_id={client_id}", headers={"Accept": "text/event-stream"})
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.read1(65536).startswith(b"retry:")
    return conn


def session(stack, client_id):
    return next((c for c in stack.get("/ws/clients").json["clients"] if c["id"] == client_id), None)


def test_an_ephemeral_session_is_removed_when_its_stream_closes_and_a_plain_one_is_not(stack_factory):
    stack = stack_factory(env={"BRIDGE_SSE_KEEPALIVE": "1"})
    ids = {}
    for kind in (True, False):
        r = stack.post("/ws/handshake", {"client_type": "dashboard", "protocol_version": "1.0", "ephemeral": kind})
        assert r.status == 200, r
        ids[kind] = r.json["client_id"]
    streams = {kind: open_stream(stack, client_id) for kind, client_id in ids.items()}
    for client_id in ids.values():
        wait_for(lambda: (session(stack, client_id) or {}).get("connected"), 10, message="the stream attached")
    assert stack.get("/ws/status").json["status"]["clients_live"] == 2

    for conn in streams.values():
        conn.close()  # as a browser tab that closes
    wait_for(lambda: session(stack, ids[True]) is None, 20, message="the ephemeral session removed")
    # The other kind outlives its stream (until BRIDGE_STALE_SECONDS), counted apart once its reader is gone.
    wait_for(lambda: not session(stack, ids[False])["connected"], 40, message="the plain session's reader gone")
    status = stack.get("/ws/status").json["status"]
    assert (status["clients_live"], status["clients_idle"]) == (0, 1), status
    r = stack.get(f"/ws/poll?client_id={ids[True]}")
    assert r.status == 404 and r.json["code"] == "unknown_client", r


def test_ephemeral_must_be_true_or_false(stack):
    r = stack.post("/ws/handshake", {"client_type": "dashboard", "ephemeral": "yes"})
    assert r.status == 400, r
    assert r.json["success"] is False and r.json["field"] == "ephemeral", r
    assert stack.get("/ws/status").json["status"]["clients"] == 0
