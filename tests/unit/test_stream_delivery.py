"""Stream readers in the hub (WebSocket/SSE polls with ``after`` and a reader token), by plain calls."""


import pytest

from services import protocol
from services.hub.requests import PollRequest


@pytest.fixture
def env(make_hub):
    return make_hub(queue_size=4, stale_seconds=60, poll_max_wait=25)


def publish(hub, count):
    for _ in range(count):
        hub.publish(protocol.TARGET_ALL, {"type": "tick"})


def seqs(fields):
    return [m["seq"] for m in fields["messages"]]


def stream_poll(hub, session, after, reader="r1", attach=False, wait=0, req_id=1):
    return hub.poll(session, PollRequest(b"gw", req_id, wait, None, after=after, reader=reader,
                                         transport="websocket", attach=attach))


def test_after_skips_what_the_connection_pushed_but_keeps_it_until_acked(env):
    hub, _, _ = env
    s = hub.create_session("dash")
    assert seqs(stream_poll(hub, s, 0, attach=True)) == [1]
    publish(hub, 2)
    assert seqs(stream_poll(hub, s, 1)) == [2, 3]
    assert seqs(stream_poll(hub, s, 3)) == []
    # A new connection that resumes from its last acked seq gets the rest again.
    hub.ack(s, 1)
    assert seqs(stream_poll(hub, s, 1, reader="r2", attach=True)) == [2, 3]
    assert s.transport == "websocket" and hub.describe(s)["transport"] == "websocket"


def test_parked_stream_poll_wakes_only_for_new_seqs(env):
    hub, _, replies = env
    s = hub.create_session("dash")
    stream_poll(hub, s, 0, attach=True)
    assert stream_poll(hub, s, 1, wait=10, req_id=2) is None  # seq 1 is still queued, but already pushed
    hub.flush()
    assert replies == []
    publish(hub, 1)
    hub.flush()
    (_, req_id, fields), = replies
    assert req_id == 2 and seqs(fields) == [2]


def test_old_reader_is_superseded_by_attach_and_by_a_plain_poll(env):
    hub, _, replies = env
    s = hub.create_session("dash")
    stream_poll(hub, s, 0, attach=True)
    assert stream_poll(hub, s, 1, wait=10, req_id=2) is None
    stream_poll(hub, s, 1, reader="r2", attach=True, req_id=3)
    assert replies[-1][1] == 2 and replies[-1][2]["superseded"]
    assert stream_poll(hub, s, 1, reader="r1", req_id=4)["superseded"]
    hub.poll(s, PollRequest(b"gw", 5, 0, 1))
    assert s.transport == "poll"
    assert stream_poll(hub, s, 1, reader="r2", req_id=6)["superseded"]


def test_delivered_messages_are_evicted_first_without_counting_as_lost(env):
    hub, _, _ = env
    s = hub.create_session("dash")
    stream_poll(hub, s, 0, attach=True)
    publish(hub, 3)  # queue: 1..4, all but 1 undelivered
    assert seqs(stream_poll(hub, s, 1)) == [2, 3, 4]
    publish(hub, 4)  # 1..4 go to make room; the reader has them
    fields = stream_poll(hub, s, 4)
    assert seqs(fields) == [5, 6, 7, 8] and fields["dropped"] == 0
    assert s.dropped_total == 0 and hub.stats["dropped"] == 0
    publish(hub, 6)  # 5..8 delivered (silent), 9, 10 undelivered and lost
    fields = stream_poll(hub, s, 8)
    assert seqs(fields) == [11, 12, 13, 14] and fields["dropped"] == 2


def test_resuming_below_evicted_deliveries_counts_them_lost(env):
    hub, _, _ = env
    s = hub.create_session("dash")
    stream_poll(hub, s, 0, attach=True)
    publish(hub, 3)
    stream_poll(hub, s, 1)  # pushed 2..4
    publish(hub, 2)  # 1 and 2 evicted silently
    hub.ack(s, 1)  # the client confirms only 1: 2 is gone for good
    fields = stream_poll(hub, s, 1, reader="r2", attach=True)
    assert fields["dropped"] == 1 and seqs(fields) == [3, 4, 5, 6]
    assert s.dropped_total == 1


def test_ack_beyond_the_last_seq_is_clamped(env):
    hub, _, _ = env
    s = hub.create_session("dash")
    hub.ack(s, 10**9)
    assert s.acked == 1
    publish(hub, 1)
    assert seqs(stream_poll(hub, s, 0, attach=True)) == [2]


def test_detach_releases_the_parked_poll_and_counts_idle_from_then(env):
    hub, clock, replies = env
    s = hub.create_session("dash")
    stream_poll(hub, s, 0, attach=True)
    assert stream_poll(hub, s, 1, wait=10, req_id=2) is None
    assert hub.describe(s)["connected"]
    clock.now += 5
    hub.detach(s, "r1")
    assert replies[-1][2]["closed"] and s.reader is None and not hub.describe(s)["connected"]
    assert hub.remove_stale(60) == []
    clock.now += 61
    assert hub.remove_stale(60) == [s.client_id]


def test_status_counts_connected_clients_by_transport(env):
    hub, _, _ = env
    a = hub.create_session("dash")
    b = hub.create_session("lightroom")
    stream_poll(hub, a, 0, attach=True)
    stream_poll(hub, a, 1, wait=10, req_id=2)
    hub.poll(b, PollRequest(b"gw", 3, 0, None))  # drains connection_established
    assert hub.poll(b, PollRequest(b"gw", 4, 10, None)) is None
    assert hub.status()["clients_by_transport"] == {"websocket": 1, "poll": 1}
