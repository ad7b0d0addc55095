"""What the store writes per loop turn and what it leaves to its checkpoint (plain calls, injected clocks)."""

import pytest

from services import protocol
from services.hub import handlers, store as store_module
from services.hub.handlers import Context
from services.hub.requests import PollRequest
from tests.unit.test_store import Rig, publish


@pytest.fixture
def rig(tmp_path):
    rig = Rig(tmp_path / "hub.sqlite3")
    yield rig
    rig.store.db.close()


def send(rig, session, message):
    req = {"op": protocol.OP_SEND, "id": 1, "client_id": session.client_id, "message": message}
    return handlers.dispatch(rig.hub, Context(b"gw", lambda event: None), req)["response"]


def test_meta_is_encoded_only_when_it_changed_and_every_change_survives_a_restart(rig, monkeypatch):
    encoded = []
    real = store_module._session_meta
    monkeypatch.setattr(store_module, "_session_meta", lambda s: encoded.append(s.client_id) or real(s))
    a = rig.client(["jobs"])
    b = rig.client(["jobs"])
    rig.commit()
    assert sorted(encoded) == sorted([a.client_id, b.client_id])
    encoded.clear()
    publish(rig.hub, 3)
    rig.poll(a.client_id, ack=2)
    rig.commit()
    assert encoded == []  # queue and counters moved, the meta did not
    send(rig, a, {"type": "register", "client_type": "dashboard", "client_name": "desk", "version": "2.1"})
    send(rig, b, {"type": "subscribe", "channels": ["photos", "system"], "snapshot": False})
    rig.commit()
    assert sorted(encoded) == sorted([a.client_id, b.client_id])
    send(rig, b, {"type": "unsubscribe", "channels": ["jobs"]})
    rig.commit()
    hub = rig.restart()
    a2, b2 = hub.sessions[a.client_id], hub.sessions[b.client_id]
    assert (a2.client_type, a2.client_name, a2.info) == ("dashboard", "desk", {"version": "2.1"})
    assert a2.secret == a.secret and b2.secret == b.secret
    assert b2.subscriptions == {"photos", "system"} and hub.channels["photos"] == {b2}
    assert a2 not in rig.hub.changes.meta and b2 not in rig.hub.changes.meta  # loaded as stored: nothing to write


def seqs(session):
    return [seq for seq, _ in session.queue]


def stored_session(rig, client_id):
    return rig.store.db.execute("SELECT head, next_seq FROM sessions WHERE client_id=?", (client_id,)).fetchone()


def test_an_acknowledged_head_waits_for_the_checkpoint_and_next_seq_never_goes_back(rig):
    s = rig.client(["jobs"])  # seq 1 (the welcome) drained: written at once
    rig.commit()
    publish(rig.hub, 5)  # seqs 2..6
    rig.commit()
    assert stored_session(rig, s.client_id) == (2, 2)  # the rows hold 2..6; the counters wait
    assert [m["seq"] for m in rig.poll(s.client_id, ack=1)] == [2, 3, 4, 5, 6]
    rig.poll(s.client_id, ack=6)
    rig.commit()
    assert stored_session(rig, s.client_id) == (2, 2) and s.client_id in rig.store.deferred
    rig.mono.advance(rig.store.checkpoint_seconds)
    assert rig.commit()  # nothing else changed: the checkpoint alone is a reason to write
    assert stored_session(rig, s.client_id) == (7, 7) and rig.store.deferred == {}
    assert rig.store.counts()["queue"] == 0
    publish(rig.hub, 3)  # seqs 7..9
    rig.commit()
    rig.poll(s.client_id, ack=9)
    rig.commit()
    hub = rig.restart()  # before the next checkpoint
    s2 = hub.sessions[s.client_id]
    assert seqs(s2) == [7, 8, 9] and s2.next_seq == 10  # next_seq from the rows, not the stored 7
    assert rig.poll(s.client_id, ack=9) == []  # the repeated ack: nothing seen twice
    publish(hub, 1)
    assert [m["seq"] for m in rig.poll(s.client_id, ack=9)] == [10]


def test_next_seq_comes_from_the_rows_even_when_every_row_was_acknowledged(rig):
    s = rig.client(["jobs"])
    rig.commit()
    publish(rig.hub, 4)  # seqs 2..5, only the rows are written
    rig.commit()
    rig.poll(s.client_id, ack=5)
    rig.commit()
    hub = rig.restart()
    s2 = hub.sessions[s.client_id]
    assert s2.next_seq == 6 and s2.acked == 1
    assert [m["seq"] for m in rig.poll(s.client_id, ack=5)] == []
    publish(hub, 1)
    assert [m["seq"] for m in rig.poll(s.client_id, ack=5)] == [6]


def test_a_clean_close_writes_the_waiting_checkpoint(rig):
    s = rig.client(["jobs"])
    publish(rig.hub, 5)
    rig.commit()
    rig.poll(s.client_id, ack=6)
    rig.commit()
    assert rig.store.deferred
    rig.store.close()  # the hub's clean shutdown
    hub = rig.start()
    assert stored_session(rig, s.client_id) == (7, 7) and rig.store.counts()["queue"] == 0
    assert seqs(hub.sessions[s.client_id]) == [] and hub.sessions[s.client_id].next_seq == 7


def test_a_drained_poll_is_written_in_its_own_turn(rig):
    s = rig.client(["jobs"])
    publish(rig.hub, 3)
    rig.commit()
    assert [m["n"] for m in rig.poll(s.client_id)] == [0, 1, 2]  # no ack: taken for good
    rig.commit()
    assert s.client_id not in rig.store.deferred
    hub = rig.restart()
    assert seqs(hub.sessions[s.client_id]) == [] and hub.sessions[s.client_id].next_seq == 5


def test_an_overflow_and_its_dropped_count_are_written_in_their_own_turn(tmp_path):
    rig = Rig(tmp_path / "overflow.sqlite3", queue_size=3)
    s = rig.client(["jobs"])
    publish(rig.hub, 5)  # seqs 2..6, the queue keeps 4..6: two lost
    rig.commit()
    hub = rig.restart()
    s2 = hub.sessions[s.client_id]
    assert seqs(s2) == [4, 5, 6] and s2.dropped_total == 2
    fields = hub.poll(s, PollRequest(b"gw", 1, 0, 1))
    assert [m["seq"] for m in fields["messages"]] == [4, 5, 6] and fields["dropped"] == 2
    rig.commit()
    hub = rig.restart()
    assert hub.sessions[s.client_id].dropped_unreported == 0  # reported once, never twice
    rig.store.db.close()


def test_holes_go_with_the_checkpoint_that_passes_them(tmp_path):
    rig = Rig(tmp_path / "holes.sqlite3", queue_size=3)
    s = rig.conflated_client()
    assert rig.store.counts()["holes"] == 1 and s.client_id in rig.store.hole_highs
    rig.poll(s.client_id, ack=5)
    rig.commit()  # only the acknowledged head moved (the overflow is told with the next message): deferred
    rig.mono.advance(rig.store.checkpoint_seconds)
    rig.commit()
    assert rig.store.counts()["holes"] == 0 and rig.store.counts()["queue"] == 0
    assert rig.store.hole_highs == {}
    hub = rig.restart()
    assert seqs(hub.sessions[s.client_id]) == [] and hub.sessions[s.client_id].next_seq == 6
    rig.store.db.close()
