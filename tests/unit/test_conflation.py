"""Conflation on overflow, by plain calls on the hub (docs/DURABILITY.md has the policy)."""

import itertools

import pytest

from services import protocol
from services.hub.config import HubConfig
from services.hub.hub import Hub
from services.hub.requests import PollRequest


@pytest.fixture
def hub():
    ids = (f"client-{n}" for n in itertools.count(1))
    return Hub(HubConfig(queue_size=4), lambda *a: None, clock=lambda: 1000.0, wallclock=lambda: 1_700_000_000.0,
               new_id=lambda: next(ids))


def client(hub):
    s = hub.create_session("lightroom")
    hub.subscribe(s, ["jobs", "system"])
    hub.poll(s, PollRequest(b"gw", 0, 0, None))
    return s


def pub(hub, kind, channel="jobs", **fields):
    hub.publish(protocol.TARGET_CHANNEL, {"type": kind, **fields}, channel)


def kinds(session):
    return [(m["type"], m.get("job_id"), m.get("n")) for _, m in session.queue]


def test_a_newer_progress_replaces_the_queued_ones_of_its_job(hub):
    s = client(hub)
    pub(hub, "job_progress", job_id="a", n=1)
    pub(hub, "job_progress", job_id="b", n=2)
    pub(hub, "job_completed", job_id="c", n=3)
    pub(hub, "job_progress", job_id="a", n=4)  # queue full now (4)
    pub(hub, "job_progress", job_id="a", n=5)  # replaces both of a's
    assert kinds(s) == [("job_progress", "b", 2), ("job_completed", "c", 3), ("job_progress", "a", 5)]
    assert [seq for seq, _ in s.queue] == [3, 4, 6]  # gaps (2, 5) where a's were
    assert hub.poll(s, PollRequest(b"gw", 1, 0, None))["dropped"] == 2


def test_an_unkeyed_newcomer_pushes_out_the_oldest_conflatable_one_first(hub):
    s = client(hub)
    pub(hub, "job_completed", job_id="x", n=1)
    pub(hub, "job_progress", job_id="a", n=2)
    pub(hub, "job_failed", job_id="y", n=3)
    pub(hub, "system_status", "system", n=4)
    pub(hub, "job_completed", job_id="z", n=5)
    pub(hub, "job_completed", job_id="w", n=6)
    assert [k[0] for k in kinds(s)] == ["job_completed", "job_failed", "job_completed", "job_completed"]


def test_a_keyed_newcomer_is_dropped_rather_than_a_completion(hub):
    s = client(hub)
    for n in range(4):
        pub(hub, "job_completed", job_id=n, n=n)
    pub(hub, "job_progress", job_id="a", n=9)
    assert [k[2] for k in kinds(s)] == [0, 1, 2, 3]
    assert s.next_seq == 7  # the dropped newcomer used up seq 6: the gap tells it
    pub(hub, "photo_imported", n=10)  # nothing conflatable left: the oldest goes, as always
    assert [k[2] for k in kinds(s)] == [1, 2, 3, 10]


def test_no_conflation_while_the_queue_has_room(hub):
    s = client(hub)
    pub(hub, "job_progress", job_id="a", n=1)
    pub(hub, "job_progress", job_id="a", n=2)
    assert [k[2] for k in kinds(s)] == [1, 2]
