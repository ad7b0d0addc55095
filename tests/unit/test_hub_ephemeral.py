"""Ephemeral sessions (a dashboard tab) and the live/idle split of ``/ws/status``, by plain calls."""

from services import protocol
from services.hub import handlers
from services.hub.hub import EPHEMERAL_IDLE_SECONDS, POLL_GAP_SECONDS
from services.hub.requests import PollRequest
from tests.unit.test_store import Rig


def handshake(hub, ephemeral):
    """A new session, its welcome already read (so a stream's first poll parks)."""
    req = {"client_type": "dashboard", "protocol_version": "1.0", "ephemeral": ephemeral}
    session = hub.sessions[handlers.handshake(hub, None, req)["client_id"]]
    hub.poll(session, PollRequest(b"gw", 0, 0, None))
    return session


def attach(hub, session, reader):
    """A WebSocket/SSE connection's first poll, parked."""
    hub.poll(session, PollRequest(b"gw", 1, 10, None, after=0, reader=reader, transport="sse", attach=True))


def detach(hub, session, reader):
    handlers.dispatch(hub, None, {"op": "detach", "client_id": session.client_id, "reader": reader})


def test_an_ephemeral_session_goes_when_its_stream_ends_and_a_plain_one_stays(make_hub):
    hub, _, replies = make_hub()
    tab, plain = handshake(hub, True), handshake(hub, False)
    attach(hub, tab, "r1")
    attach(hub, plain, "r2")
    detach(hub, tab, "r1")
    detach(hub, plain, "r2")
    assert tab.client_id not in hub.sessions and plain.client_id in hub.sessions
    assert any(fields.get("closed") for _, _, fields in replies)  # the tab's parked poll was answered


def test_an_ephemeral_session_taken_over_by_a_new_stream_stays_when_the_old_one_ends(make_hub):
    hub, _, _ = make_hub()
    tab = handshake(hub, True)
    attach(hub, tab, "old")
    attach(hub, tab, "new")  # the browser reconnected before the old stream's end reached the hub
    detach(hub, tab, "old")
    assert tab.client_id in hub.sessions
    detach(hub, tab, "new")
    assert tab.client_id not in hub.sessions


def test_an_ephemeral_session_with_no_reader_goes_after_a_minute_not_the_stale_timeout(make_hub):
    hub, clock, _ = make_hub(stale_seconds=300)
    tab, plain = handshake(hub, True), handshake(hub, False)
    clock.now += EPHEMERAL_IDLE_SECONDS - 1
    assert hub.remove_stale(300) == []
    clock.now += 2
    assert hub.remove_stale(300) == [tab.client_id]
    assert plain.client_id in hub.sessions
    assert hub.remove_stale(10) == [plain.client_id]  # a shorter cleanup still applies to both


def test_status_counts_sessions_without_a_reader_apart_with_what_they_dropped(make_hub):
    hub, clock, _ = make_hub(queue_size=2)
    live, idle = handshake(hub, False), handshake(hub, False)
    clock.now += POLL_GAP_SECONDS + 1  # since their last polls
    for session in (live, idle):
        hub.subscribe(session, ["jobs"])
    attach(hub, live, "r")
    for n in range(5):
        hub.publish(protocol.TARGET_CHANNEL, {"type": "photo_imported", "n": n}, "jobs")
        hub.flush()  # answers the live reader's parked poll; it asks again at once
        hub.poll(live, PollRequest(b"gw", 2, 10, None, after=live.sent, reader="r", transport="sse"))
    status = hub.status()
    assert (status["clients_live"], status["clients_idle"]) == (1, 1)
    assert status["dropped_live"] == 0
    assert status["dropped_idle"] == idle.dropped_total == 3  # 5 into a queue of 2
    listed = {c["id"]: c["connected"] for c in handlers.clients(hub, None, {})["clients"]}
    assert listed == {live.client_id: True, idle.client_id: False}


def test_the_ephemeral_mark_survives_a_restart(tmp_path):
    rig = Rig(tmp_path / "hub.sqlite3")
    tab = handshake(rig.hub, True)
    plain = handshake(rig.hub, False)
    rig.commit()
    hub = rig.restart()
    assert hub.sessions[tab.client_id].ephemeral is True
    assert hub.sessions[plain.client_id].ephemeral is False
    rig.store.db.close()


def test_a_long_poller_between_two_polls_stays_live_for_a_moment(make_hub):
    hub, clock, _ = make_hub()
    plugin = handshake(hub, False)  # its welcome read by a plain poll
    hub.poll(plugin, PollRequest(b"gw", 1, 10, None))  # parked: live
    assert hub.status()["clients_live"] == 1
    clock.now += 10
    hub.expire()  # the hold ended with nothing to say; the plugin polls again a moment later
    assert plugin.parked is None and hub.status()["clients_live"] == 1
    clock.now += POLL_GAP_SECONDS + 0.1
    assert (hub.status()["clients_live"], hub.status()["clients_idle"]) == (0, 1)
