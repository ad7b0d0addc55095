"""The gateway-hub link against the real processes: a backlog of any size drains, a dead link is not waited on."""

import re
import signal
import time

import pytest

from tests.stack import Stack, wait_for
from tests.system.transport_client import HubPublisher

BLOB = 100_000


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """One gateway worker, so the victim's worker is the one every other request lands on."""
    stack = Stack(tmp_path_factory.mktemp("link"), {"BRIDGE_GATEWAY_WORKERS": "1"})
    stack.start("hub", "gateway").wait_ready()
    yield stack
    stack.stop_all()


def test_a_backlog_over_the_frame_limit_drains_in_order_over_several_polls(api):
    client_id = api.handshake("lightroom", channels=["big"])
    publisher = HubPublisher(api)
    try:
        publisher.publish(
            [{"type": "blob", "n": n, "data": "x" * BLOB} for n in range(45)], target="channel", to="big"
        )
    finally:
        publisher.close()
    got, replies, last = [], [], 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = api.poll(client_id, ack=last)
        assert r.status == 200, r  # was: 503 hub_unavailable, for good
        replies.append(r.json)
        got += [m for m in r.json["messages"] if m["type"] == "blob"]
        if r.json["messages"]:
            last = r.json["messages"][-1]["seq"]
        assert api.get("/ws/status").status == 200  # the worker keeps answering everything else
        if not r.json.get("more"):
            break
    assert [m["n"] for m in got] == list(range(45))
    assert all(len(m["data"]) == BLOB for m in got)
    assert len(replies) >= 5 and all(rep.get("more") for rep in replies[:-1])
    assert sum(rep["dropped"] for rep in replies) == 0


def test_a_stopped_hub_fails_a_parked_poll_at_once_and_the_worker_recovers_by_itself(api):
    client_id = api.handshake("lightroom")
    api.poll(client_id)  # drain the welcome, so the next poll parks
    api.signal("hub", signal.SIGSTOP)
    try:
        r = api.poll(client_id, wait=20)
        log = api.output("gateway")
    finally:
        api.signal("hub", signal.SIGCONT)
    # The link's heartbeat noticed the silent hub and failed the parked poll with the link, while the hub
    # was still stopped, instead of letting it wait out its 20 s hold and the gateway's timeout.
    assert r.status == 503 and r.json["code"] == "hub_unavailable" and r.headers.get("retry-after")
    assert re.search(r"link to the hub .* lost .* failing [1-9]\d* waiting requests", log), log[-2000:]
    wait_for(lambda: api.get("/ws/status").status == 200, timeout=10, message="the worker back on the hub")
    assert api.poll(client_id).status == 200
