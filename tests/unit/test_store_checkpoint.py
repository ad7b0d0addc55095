"""What the store writes per loop turn and what it leaves to its checkpoint (plain calls, injected clocks)."""

import pytest

from services import protocol
from services.hub import handlers, store as store_module
from services.hub.handlers import Context
from tests.unit.test_store import Rig, publish


@pytest.fixture
def rig(tmp_path):
    rig = Rig(tmp_path / "hub.sqlite3")
    yield rig
    rig.store.db.close()


def send(rig, session, message):
    req = {"op": protocol.OP_SEND, "id": 1, "client_id": session.client_id, "message": message}
    return handlers.send(rig.hub, Context(b"gw", lambda event: None), req)["response"]


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
    assert not a2.meta_changed and not b2.meta_changed  # loaded as stored: nothing to write
