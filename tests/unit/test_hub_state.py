"""The hub's state machine by plain calls, with an injected clock: no sockets, no sleeping."""


import pytest

from services import protocol
from services.hub.config import HubConfig
from services.protocol import ProtocolError
from services.hub.requests import PollRequest


@pytest.fixture
def env(make_hub):
    return make_hub(queue_size=3, stale_seconds=60, poll_max_wait=25)


def welcome(hub, client_type="lightroom"):
    session = hub.create_session(client_type)
    hub.poll(session, PollRequest(b"gw", 0, 0, None))
    return session


def test_new_session_has_connection_established_queued(env):
    hub, _, _ = env
    session = hub.create_session("lightroom")
    fields = hub.poll(session, PollRequest(b"gw", 1, 0, None))
    (msg,) = fields["messages"]
    assert msg["type"] == "connection_established" and msg["seq"] == 1
    assert msg["timestamp"] == "2023-11-14T22:13:20.000Z"


def test_poll_parks_then_publish_answers_on_flush(env):
    hub, _, replies = env
    s = welcome(hub)
    hub.subscribe(s, ["jobs"])
    assert hub.poll(s, PollRequest(b"gw", 2, 10, None)) is None
    assert hub.publish(protocol.TARGET_CHANNEL, {"type": "job_progress"}, "jobs") == 1
    assert replies == []  # answered once per loop turn, not per message
    hub.publish(protocol.TARGET_CHANNEL, {"type": "job_progress", "n": 2}, "jobs")
    hub.flush()
    (peer, req_id, fields), = replies
    assert (peer, req_id) == (b"gw", 2)
    assert [m["seq"] for m in fields["messages"]] == [2, 3]
    assert all(m["channel"] == "jobs" for m in fields["messages"])


def test_parked_poll_expires_empty_at_its_deadline(env):
    hub, clock, replies = env
    s = welcome(hub)
    hub.poll(s, PollRequest(b"gw", 2, 5, None))
    clock.now += 4.9
    hub.expire()
    assert replies == []
    assert hub.next_deadline() == pytest.approx(1005.0)
    clock.now += 0.2
    hub.expire()
    assert replies[0][2]["messages"] == []
    assert hub.next_deadline() is None


def test_wait_is_capped(env):
    hub, clock, replies = env
    s = welcome(hub)
    hub.poll(s, PollRequest(b"gw", 2, 10_000, None))
    clock.now += 25.01
    hub.expire()
    assert len(replies) == 1


def test_new_poll_supersedes_parked_one(env):
    hub, _, replies = env
    s = welcome(hub)
    hub.poll(s, PollRequest(b"gw1", 2, 10, None))
    hub.poll(s, PollRequest(b"gw2", 3, 10, None))
    assert replies[0][:2] == (b"gw1", 2) and replies[0][2]["superseded"] is True
    hub.publish(protocol.TARGET_CLIENT, {"type": "x"}, s.client_id)
    hub.flush()
    assert replies[1][:2] == (b"gw2", 3)


def test_overflow_drops_oldest_and_counts(env):
    hub, _, _ = env
    s = welcome(hub)
    for n in range(5):
        hub.publish(protocol.TARGET_ALL, {"type": "m", "n": n})
    fields = hub.poll(s, PollRequest(b"gw", 2, 0, None))
    assert [m["n"] for m in fields["messages"]] == [2, 3, 4]
    assert fields["dropped"] == 2 and s.dropped_total == 2
    assert hub.stats["dropped"] == 2


def test_ack_mode_keeps_until_acknowledged(env):
    hub, _, _ = env
    s = welcome(hub)
    hub.publish(protocol.TARGET_ALL, {"type": "a"})
    hub.publish(protocol.TARGET_ALL, {"type": "b"})
    first = hub.poll(s, PollRequest(b"gw", 2, 0, 1))["messages"]
    assert [m["seq"] for m in first] == [2, 3]
    assert hub.poll(s, PollRequest(b"gw", 3, 0, 1))["messages"] == first
    assert hub.poll(s, PollRequest(b"gw", 4, 0, 3))["messages"] == []


def test_shared_message_is_not_mutated_per_recipient(env):
    hub, _, _ = env
    a, b = welcome(hub), welcome(hub)
    hub.publish(protocol.TARGET_ALL, {"type": "x"})
    hub.publish(protocol.TARGET_CLIENT, {"type": "y"}, b.client_id)
    ma = hub.poll(a, PollRequest(b"gw", 2, 0, None))["messages"]
    mb = hub.poll(b, PollRequest(b"gw", 3, 0, None))["messages"]
    assert [m["seq"] for m in ma] == [2] and [m["seq"] for m in mb] == [2, 3]


def test_drop_client_cleans_every_index(env):
    hub, _, replies = env
    s = welcome(hub, "dashboard")
    hub.subscribe(s, ["jobs", "photos"])
    hub.poll(s, PollRequest(b"gw", 2, 10, None))
    hub.drop_client(s, "test")
    assert hub.sessions == {} and hub.channels == {} and hub.by_type == {}
    assert replies[-1][2]["closed"] is True
    with pytest.raises(ProtocolError) as info:
        hub.session(s.client_id)
    assert info.value.code == "unknown_client"


def test_stale_sessions_are_removed_but_parked_ones_are_not(env):
    hub, clock, _ = env
    idle, parked = welcome(hub), welcome(hub)
    hub.poll(parked, PollRequest(b"gw", 2, 25, None))
    clock.now += 61
    assert hub.remove_stale(60) == [idle.client_id]
    assert parked.client_id in hub.sessions


def test_set_client_type_moves_the_index(env):
    hub, _, _ = env
    s = welcome(hub, "unknown")
    hub.set_client_type(s, "lightroom")
    assert hub.by_type == {"lightroom": {s}}
    assert hub.publish(protocol.TARGET_TYPE, {"type": "x"}, "lightroom") == 1


def test_max_clients(env):
    hub, _, _ = env
    hub.config = HubConfig(max_clients=1)
    hub.create_session("a")
    with pytest.raises(ProtocolError) as info:
        hub.create_session("b")
    assert info.value.code == "too_many_clients"


def test_unknown_client_target_raises(env):
    hub, _, _ = env
    with pytest.raises(ProtocolError):
        hub.publish(protocol.TARGET_CLIENT, {"type": "x"}, "nobody")
