"""Queues, expiry, workers and faults: hub and gateway as real processes."""

import http.client
from concurrent.futures import ThreadPoolExecutor
import time

import psutil
import pytest

from tests.stack import wait_for


def test_queue_overflow_drops_oldest_and_reports_the_count(stack_factory):
    stack = stack_factory({"BRIDGE_QUEUE_SIZE": "5"})
    cid = stack.handshake("lightroom", ["photos"])
    for n in range(12):
        assert stack.post("/ws/broadcast", {"message": {"type": "step", "n": n}, "channel": "photos"}).status == 200
    r = stack.poll(cid)
    assert [m["n"] for m in r.json["messages"]] == [7, 8, 9, 10, 11]
    assert r.json["dropped"] == 7
    # Sequence numbers show exactly where the gap is.
    assert [m["seq"] for m in r.json["messages"]] == [9, 10, 11, 12, 13]
    (me,) = [c for c in stack.get("/ws/clients").json["clients"] if c["id"] == cid]
    assert me["dropped"] == 7
    assert stack.poll(cid).json["dropped"] == 0  # reported once


def test_stale_clients_are_removed_automatically(stack_factory):
    stack = stack_factory({"BRIDGE_STALE_SECONDS": "1"})
    idle = stack.handshake()
    active = stack.handshake()
    deadline = time.monotonic() + 15
    # Keep one client polling; the other goes quiet and must disappear.
    while time.monotonic() < deadline:
        assert stack.poll(active, wait=0.2).status == 200
        ids = [c["id"] for c in stack.get("/ws/clients").json["clients"]]
        if idle not in ids:
            break
    else:
        pytest.fail("the idle client was never removed")
    assert active in ids
    assert stack.poll(idle).status == 404


def test_a_parked_poll_is_never_stale(stack_factory):
    stack = stack_factory({"BRIDGE_STALE_SECONDS": "0.5", "BRIDGE_POLL_MAX_WAIT": "3"})
    cid = stack.handshake()
    r = stack.poll(cid, wait=3)  # parked six times longer than the stale timeout
    assert r.status == 200
    assert stack.poll(cid).status == 200


def _worker_pids(stack):
    master = psutil.Process(stack.procs["gateway"].pid)
    return [p.pid for p in master.children()]


def _worker_serving(local_port, workers):
    for pid in workers:
        for conn in psutil.Process(pid).net_connections("tcp"):
            if conn.raddr and conn.raddr.port == local_port:
                return pid
    return None


def _connection(stack):
    conn = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=30)
    conn.request("GET", "/ws/status")
    conn.getresponse().read()  # accepted by a worker: now we can see which
    return conn


def test_poll_parked_in_one_worker_is_answered_by_a_publish_through_another(stack_factory):
    stack = stack_factory({"BRIDGE_GATEWAY_WORKERS": "2"})
    workers = wait_for(lambda: len(_worker_pids(stack)) == 2 and _worker_pids(stack), message="2 workers")
    cid = stack.handshake("lightroom", ["jobs"])
    poller = _connection(stack)
    poll_worker = _worker_serving(poller.sock.getsockname()[1], workers)
    assert poll_worker in workers
    poller.request("GET", f"/ws/poll?client_id={cid}&wait=20")
    stack.wait_parked(cid)
    # Find a connection the other worker serves, and publish through it.
    for _ in range(200):
        publisher = _connection(stack)
        if _worker_serving(publisher.sock.getsockname()[1], workers) not in (poll_worker, None):
            break
        publisher.close()
    else:
        pytest.fail("never reached the second worker")
    publisher.request("POST", "/ws/broadcast", body=b'{"message": {"type": "cross"}, "channel": "jobs"}',
                      headers={"Content-Type": "application/json"})
    assert publisher.getresponse().status == 200
    started = time.monotonic()
    import json
    body = json.loads(poller.getresponse().read())
    assert [m["type"] for m in body["messages"]] == ["cross"]
    assert time.monotonic() - started < 10


def test_hub_killed_gives_503_promptly_and_recovers_without_gateway_restart(stack_factory):
    stack = stack_factory({"BRIDGE_HUB_TIMEOUT": "1.5"})
    gateway_pid = stack.procs["gateway"].pid
    stack.kill("hub")
    started = time.monotonic()
    r = stack.get("/ws/status")
    assert r.status == 503 and r.json["success"] is False and r.json["code"] == "hub_unavailable"
    assert time.monotonic() - started < 5
    r = stack.post("/ws/handshake", {"client_type": "lightroom"})
    assert r.status == 503 and r.headers.get("retry-after")
    stack.start("hub")
    wait_for(lambda: stack.get("/ws/status").status == 200, timeout=15, message="the gateway to reach the new hub")
    cid = stack.handshake()
    assert stack.poll(cid).status == 200
    assert stack.procs["gateway"].pid == gateway_pid


def _parked_poll_answer(stack, action):
    """Park a 20 s poll, run ``action()``; returns (the poll's answer, seconds from the action to it)."""
    cid = stack.handshake()
    with ThreadPoolExecutor(1) as pool:
        parked = pool.submit(stack.poll, cid, 20)
        stack.wait_parked(cid)
        started = time.monotonic()
        action()
        r = parked.result(timeout=15)
    return r, time.monotonic() - started


def test_parked_poll_answered_when_the_hub_dies(stack_factory):
    stack = stack_factory()
    r, elapsed = _parked_poll_answer(stack, lambda: stack.kill("hub"))
    assert r.status == 503
    assert elapsed < 5


def test_sigterm_answers_parked_polls_and_exits_cleanly(stack_factory):
    stack = stack_factory()
    exits = []
    r, elapsed = _parked_poll_answer(stack, lambda: exits.append(stack.stop("hub")))
    assert exits == [0]
    # The hub answers parked polls before it exits; whether that answer or the
    # disconnect reaches the gateway first is a race ZeroMQ does not order
    # (with ZMQ_IMMEDIATE a closed pipe's unread replies go with it). Either
    # way the poll is answered at once and nothing was queued for the client.
    assert (r.status, r.json.get("messages")) in ((200, []), (503, None)), r
    assert elapsed < 5
    assert stack.stop("gateway") == 0
