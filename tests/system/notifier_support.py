"""Shared steps of the notifier's system tests: wait for the event path, collect what a client gets."""

import itertools
import time

from tests.stack import wait_for

_probes = itertools.count()


def handshake(stack, client_type="lightroom", channels=()):
    """A new client subscribed to ``channels``, with what the hub queued at once (welcome, snapshots) drained."""
    r = stack.post("/ws/handshake", {"client_type": client_type, "protocol_version": "1.0"})
    assert r.status == 200, r
    client_id = r.json["client_id"]
    if channels:
        r = stack.post("/ws/send", {"client_id": client_id, "message": {"type": "subscribe", "channels": list(channels)}})
        assert r.status == 200, r
    r = stack.poll(client_id)
    assert r.status == 200 and r.json["messages"][0]["type"] == "connection_established", r
    return client_id


def collect(stack, client_id, until, timeout=10.0):
    """Long-poll ``client_id`` until ``until(messages)`` holds; returns every message received.

    Fails with what arrived so far when ``timeout`` passes first.
    """
    got = []
    deadline = time.monotonic() + timeout
    while not until(got):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out after {timeout}s; received {[m.get('type') for m in got]}: {got[-5:]}")
        r = stack.poll(client_id, wait=round(min(left, 2.0), 3))
        assert r.status == 200, r
        got.extend(r.json["messages"])
    return got


def has(key, value):
    """``until`` for ``collect``: some message has ``key == value``."""
    return lambda got: any(m.get(key) == value for m in got)


def wait_for_notifier(stack, publisher, timeout=20.0):
    """Publish probes through the notifier until a polling client receives one.

    Proves the whole path (backend -> notifier -> hub -> client) works before
    a test starts counting, instead of sleeping through the start-up.
    """
    client_id = handshake(stack, "probe", channels=["probe"])

    def probe_arrives():
        publisher.broadcast({"type": "probe", "n": next(_probes)}, channel="probe")
        r = stack.poll(client_id, wait=0.2)
        return any(m["type"] == "probe" for m in r.json["messages"])

    try:
        wait_for(probe_arrives, timeout, interval=0, message="an event through the notifier")
    except AssertionError as ex:
        raise AssertionError(f"{ex}\n--- notifier\n{stack.output('notifier')[-2000:]}") from None
    stack.post("/ws/disconnect", {"client_id": client_id})
