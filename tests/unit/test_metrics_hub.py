"""The hub's metrics by plain calls with an injected clock: counts by type and channel, latency, holds."""


import pytest

from services import protocol
from services.hub.metrics import MAX_SERIES, PUBLISHED_AT
from services.hub.requests import PollRequest


@pytest.fixture
def env(make_hub):
    return make_hub(queue_size=2, stale_seconds=60, poll_max_wait=25)


def rows(table):
    return {(t, c): n for (t, c), n in table.items()}


def test_counts_in_out_dropped_by_type_and_channel(env):
    hub, clock, _ = env
    s = hub.create_session("lightroom")
    hub.subscribe(s, ["jobs"])
    for n in range(3):  # queue_size 2: welcome + two pushed out (unkeyed: no conflation)
        hub.publish(protocol.TARGET_CHANNEL, {"type": "photo_imported", "progress": n}, "jobs")
    hub.publish(protocol.TARGET_ALL, {"type": "notice"})
    m = hub.metrics
    assert rows(m.messages_in) == {("photo_imported", "jobs"): 3, ("notice", ""): 1}
    assert rows(m.messages_dropped) == {("connection_established", ""): 1, ("photo_imported", "jobs"): 2}
    clock.now += 0.25
    fields = hub.poll(s, PollRequest(b"gw", 1, 0, None))
    assert [msg["type"] for msg in fields["messages"]] == ["photo_imported", "notice"]
    assert all(PUBLISHED_AT not in msg for msg in fields["messages"])
    assert rows(m.messages_out) == {("photo_imported", "jobs"): 1, ("notice", ""): 1}
    assert m.deliver_latency.count == 2 and m.deliver_latency.sum == pytest.approx(0.5)
    assert hub.status()["deliver_latency"] == {"count": 2, "sum": 0.5}


def test_poll_hold_is_measured_from_park_to_answer(env):
    hub, clock, replies = env
    s = hub.create_session("lightroom")
    hub.poll(s, PollRequest(b"gw", 1, 0, None))
    assert hub.poll(s, PollRequest(b"gw", 2, 10, None)) is None
    clock.now += 4.0
    hub.publish(protocol.TARGET_CLIENT, {"type": "hello"}, s.client_id)
    hub.flush()
    assert len(replies) == 1
    assert hub.metrics.poll_hold.count == 1 and hub.metrics.poll_hold.sum == pytest.approx(4.0)
    assert hub.metrics.parked_since == {}


def test_label_sets_are_bounded(env):
    hub, _, _ = env
    for n in range(MAX_SERIES + 50):
        hub.publish(protocol.TARGET_ALL, {"type": f"t{n}"})
    assert len(hub.metrics.messages_in) == MAX_SERIES
    assert hub.metrics.messages_in[("other", "other")] == 51


def test_snapshot_is_plain_data(env):
    hub, clock, _ = env
    s = hub.create_session("lightroom")
    hub.subscribe(s, ["jobs", "system"])
    hub.metrics.request("status", 0.001)
    hub.metrics.event()
    clock.now += 2
    snap = hub.metrics.snapshot(hub)
    assert snap["clients"] == [["lightroom", "poll", 1]]
    assert sorted(snap["channels"]) == [["jobs", 1], ["system", 1]]
    assert snap["queue_depth"] == [["lightroom", 1, 1]]
    assert snap["requests"]["status"]["count"] == 1
    assert snap["notifier_age"] == 2.0
    protocol.encode_reply(1, metrics=snap)  # packs with string keys only
