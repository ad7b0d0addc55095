"""A fan-out's queue entries as one queue_groups row: restore, reference counting, deletion (plain calls)."""

import pytest

from services import protocol
from tests.unit.test_store import Rig, publish


@pytest.fixture
def rig(tmp_path):
    rig = Rig(tmp_path / "hub.sqlite3")
    yield rig
    rig.store.db.close()


def fan(rig, clients=6, channel="jobs"):
    sessions = [rig.client([channel]) for _ in range(clients)]
    rig.commit()
    return sessions


def checkpoint(rig):
    rig.commit()
    rig.mono.advance(rig.store.checkpoint_seconds)
    rig.commit()


def test_a_fan_out_is_one_group_row_and_every_member_gets_its_own_seqs_back(rig):
    sessions = fan(rig)
    late = rig.client(["jobs"])
    publish(rig.hub, 1, "jobs")  # seq 2 for each (every welcome was seq 1)
    rig.poll(sessions[0].client_id, ack=2)  # it has seq 2 already: its new entries differ
    publish(rig.hub, 3, "jobs")
    rig.commit()
    counts = rig.store.counts()
    assert counts["queue_groups"] == 1 and counts["queue"] == 1  # six alike share a row, the other has its own
    assert list(rig.store.group_refs.values()) == [6]
    hub = rig.restart()
    for s in sessions[1:] + [late]:
        assert [(seq, m["n"]) for seq, m in hub.sessions[s.client_id].queue] == [(2, 0), (3, 0), (4, 1), (5, 2)]
    assert [seq for seq, _ in hub.sessions[sessions[0].client_id].queue] == [3, 4, 5]
    assert [m["seq"] for m in rig.poll(sessions[0].client_id, ack=2)] == [3, 4, 5]
    assert list(rig.store.group_refs.values()) == [6]


def test_a_group_goes_when_the_last_member_passed_it_or_was_dropped(rig):
    sessions = fan(rig, 5)
    publish(rig.hub, 3)
    rig.commit()
    (gid,) = rig.store.group_refs
    for s in sessions[:3]:
        rig.poll(s.client_id, ack=4)
    rig.poll(sessions[3].client_id, ack=3)  # not past the group's last entry yet
    checkpoint(rig)
    assert rig.store.group_refs == {gid: 2} and rig.store.counts()["queue_groups"] == 1
    rig.hub.drop_client(sessions[4], "test")
    rig.commit()
    assert rig.store.group_refs == {gid: 1}
    hub = rig.restart()  # the references are counted again from the rows
    assert rig.store.group_refs == {gid: 1}
    assert [m["seq"] for m in rig.poll(sessions[3].client_id, ack=3)] == [4]
    rig.poll(sessions[3].client_id, ack=4)
    checkpoint(rig)
    assert rig.store.group_refs == {} and rig.store.counts()["queue_groups"] == 0
    rig.store.collect()
    assert rig.store.counts()["messages"] == 3  # the channel history's
    assert all(not s.queue for s in hub.sessions.values())


def test_a_group_nobody_needs_any_more_is_deleted_at_load(rig):
    sessions = fan(rig, 4)
    publish(rig.hub, 2)
    rig.commit()
    for s in sessions:
        rig.poll(s.client_id, ack=3)
    rig.store.close()  # clean: the checkpoint moves every head past the group
    rig.start()
    assert rig.store.counts()["queue_groups"] == 0 and rig.store.group_refs == {}


def test_a_conflated_entry_inside_a_group_stays_gone(tmp_path):
    rig = Rig(tmp_path / "holes.sqlite3", queue_size=3)
    sessions = fan(rig, 4)
    for n, job in enumerate(("a", "b", "c")):
        rig.hub.publish(protocol.TARGET_CHANNEL, {"type": "job_progress", "job_id": job, "n": n}, "jobs")
    rig.commit()
    assert rig.store.counts()["queue_groups"] == 1
    rig.hub.publish(protocol.TARGET_CHANNEL, {"type": "job_progress", "job_id": "b", "n": 3}, "jobs")
    rig.commit()
    hub = rig.restart()
    for s in sessions:
        assert [(seq, m["n"]) for seq, m in hub.sessions[s.client_id].queue] == [(2, 0), (4, 2), (5, 3)]
    rig.store.db.close()
