"""A turn's new messages as one stored run: restore, collection of dead runs, the schema 4 upgrade."""

import pytest

from services import protocol
from services.hub import store as store_module
from services.hub.requests import PollRequest
from tests.unit.test_store import Rig, publish


@pytest.fixture
def rig(tmp_path):
    rig = Rig(tmp_path / "hub.sqlite3", history_size=3)
    yield rig
    rig.store.db.close()


def test_a_turns_messages_are_one_run_and_come_back_after_a_restart(rig):
    s = rig.client(["jobs"])
    publish(rig.hub, 50)
    rig.commit()
    counts = rig.store.counts()
    assert counts["message_runs"] == 1 and counts["messages"] == 50
    publish(rig.hub, 2)
    rig.commit()
    assert rig.store.counts()["message_runs"] == 2
    hub = rig.restart()
    assert [m["n"] for m in rig.poll(s.client_id, ack=1)][:3] == [0, 1, 2]
    assert len(hub.sessions[s.client_id].queue) == 52
    publish(hub, 1)
    rig.commit()  # ids continue after the runs: nothing overwritten
    hub = rig.restart()
    assert [m["n"] for _, m in hub.sessions[s.client_id].queue][-3:] == [0, 1, 0]


def test_a_big_turn_is_cut_into_runs(rig, monkeypatch):
    monkeypatch.setattr(store_module, "RUN_MESSAGES", 4)
    rig.client(["jobs"])
    publish(rig.hub, 10)
    rig.commit()
    rows = rig.store.db.execute("SELECT id, last FROM message_runs ORDER BY id").fetchall()
    assert [last - first + 1 for first, last in rows] == [4, 4, 2]
    assert rows[1][0] == rows[0][1] + 1 and rows[2][0] == rows[1][1] + 1


def test_a_mostly_dead_run_leaves_its_survivors_as_single_rows(rig):
    s = rig.client(["jobs"])
    publish(rig.hub, 10)
    rig.commit()
    assert rig.store.counts()["messages"] == 10
    rig.poll(s.client_id, ack=11)  # now only the channel history (3) keeps any
    rig.commit()
    rig.mono.advance(rig.store.checkpoint_seconds)
    rig.commit()
    assert rig.store.collect() == 7
    counts = rig.store.counts()
    assert counts["message_runs"] == 0 and counts["messages"] == 3
    rig.restart()
    s = rig.client([])
    fields = rig.hub.poll(s, PollRequest(b"gw", 1, 0, None))
    assert fields["messages"] == []
    reports = rig.hub.recover(s, {"jobs": (0, rig.hub.history.channel("jobs").epoch)}, 100)
    assert reports["jobs"]["replayed"] == 3
    assert [m["n"] for m in rig.poll(s.client_id)] == [7, 8, 9]


def test_a_half_live_run_stays_whole(rig):
    rig.client(["jobs"])
    publish(rig.hub, 4)  # all four queued for the client, three in history
    rig.commit()
    rig.store.garbage += 1
    assert rig.store.collect() == 0 and rig.store.counts()["message_runs"] == 1


def test_a_schema_4_store_is_upgraded_in_place(tmp_path):
    rig = Rig(tmp_path / "old.sqlite3")
    s = rig.client(["jobs"])
    publish(rig.hub, 3)
    rig.commit()
    db = rig.store.db
    # What schema 4 wrote: single message rows, no runs table.
    for first, _, body in db.execute("SELECT id, last, body FROM message_runs").fetchall():
        for i, message in enumerate(protocol.decode_record(body)["m"]):
            db.execute("INSERT INTO messages VALUES (?, ?)", (first + i, protocol.encode_record(message)))
    db.executescript("DROP TABLE message_runs; DROP TABLE queue_groups; UPDATE meta SET value=4 WHERE key='schema';")
    hub = rig.restart()
    assert [m["n"] for _, m in hub.sessions[s.client_id].queue] == [0, 1, 2]
    assert rig.store.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0] == store_module.SCHEMA_VERSION
    publish(hub, 1)
    rig.commit()
    hub = rig.restart()
    assert [m["n"] for _, m in hub.sessions[s.client_id].queue] == [0, 1, 2, 0]
    rig.store.db.close()


@pytest.mark.parametrize("count", [0, 1, 15, 16, 1000, 70_000])
def test_a_run_built_from_each_messages_own_record_is_the_run_record(count):
    messages = [{"type": "e", "n": n, "text": "x" * (n % 7)} for n in range(count)]
    parts = [protocol.encode_record(m) for m in messages]
    assert protocol.encode_run_record(parts) == protocol.encode_record({"m": messages})


def test_a_published_channel_message_is_encoded_once_for_history_and_store(rig, monkeypatch):
    rig.client(["jobs"])
    publish(rig.hub, 3)
    calls = []
    real = protocol.encode_record
    monkeypatch.setattr(protocol, "encode_record", lambda record: (calls.append(record), real(record))[1])
    rig.commit()
    assert not any("m" in record for record in calls)  # the run was put together from the kept records
    hub = rig.restart()
    assert [e[2]["n"] for e in hub.history.channel("jobs").entries] == [0, 1, 2]
