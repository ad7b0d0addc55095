"""Poll answers cut to a byte budget, and streams pushed to as messages are queued (hub by plain calls)."""

import pytest

from services import protocol
from services.hub.requests import PollRequest


@pytest.fixture
def env(make_hub):
    return make_hub(queue_size=100, stale_seconds=60, poll_max_wait=25)


def publish(hub, count, **fields):
    for n in range(count):
        hub.publish(protocol.TARGET_ALL, dict({"type": "tick", "n": n}, **fields))


def stream(hub, session, after, window=1000, window_bytes=1 << 20, req_id=1, attach=True):
    return hub.poll(session, PollRequest(b"gw", req_id, 10, None, after=after, reader="r1", transport="sse",
                                         attach=attach, window=window, window_bytes=window_bytes))


def pushed(replies, req_id=1):
    return [m["seq"] for _, rid, fields in replies if rid == req_id for m in fields["messages"]]


def test_a_poll_answer_is_cut_to_the_byte_budget_and_says_more(env):
    hub, _, _ = env
    s = hub.create_session("lightroom")
    publish(hub, 45, data="x" * 100_000)
    got, polls = [], 0
    while True:
        fields = hub.poll(s, PollRequest(b"gw", polls, 0, got[-1] if got else 0))
        polls += 1
        assert len(protocol.encode_reply(1, **fields)[1]) <= protocol.POLL_REPLY_BYTES + protocol.REPLY_ENVELOPE_BYTES
        got += [m["seq"] for m in fields["messages"]]
        if not fields.get("more"):
            break
    assert got == list(range(1, 47)) and polls >= 5


def test_one_message_larger_than_the_budget_still_goes_alone(env):
    hub, _, _ = env
    s = hub.create_session("lightroom")
    hub.poll(s, PollRequest(b"gw", 1, 0, None))  # drain the welcome
    big = "x" * (protocol.MAX_FRAME_BYTES - 1024)
    publish(hub, 2, data=big)
    fields = hub.poll(s, PollRequest(b"gw", 2, 0, None))
    assert [m["seq"] for m in fields["messages"]] == [2] and fields["more"]
    assert len(protocol.encode_reply(2, **fields)[1]) <= protocol.MAX_REPLY_BYTES


def test_a_burst_larger_than_the_queue_reaches_an_attached_stream(env):
    hub, _, replies = env
    s = hub.create_session("dash")
    assert stream(hub, s, 0) is None
    publish(hub, 300)  # one loop turn: no flush in between
    hub.flush()
    assert pushed(replies) == list(range(1, 302))
    assert s.dropped_total == 0 and all(fields.get("open") for _, _, fields in replies)
    assert len(replies) <= 5  # a queue's worth per push, not one reply per message


def test_a_stream_without_credit_loses_exactly_what_it_never_got(env):
    hub, _, replies = env
    s = hub.create_session("dash")
    stream(hub, s, 0, window=50)
    publish(hub, 300)
    hub.flush()
    got = pushed(replies)
    assert got == list(range(1, 51))
    # 251 more were queued for a queue of 100 with no credit: 151 lost, counted; the rest follow the credit.
    hub.credit(s, "r1", 1000, 1 << 20)
    hub.flush()
    got = pushed(replies)
    dropped = sum(fields["dropped"] for _, _, fields in replies)
    assert got[:50] == list(range(1, 51)) and got[50:] == list(range(202, 302))
    assert dropped == 151 == s.dropped_total


def test_the_byte_window_bounds_what_is_pushed(env):
    hub, _, replies = env
    s = hub.create_session("dash")
    stream(hub, s, 0, window_bytes=50_000)
    publish(hub, 20, data="x" * 10_000)
    hub.flush()
    sizes = [fields["bytes"] for _, _, fields in replies]
    assert sum(sizes) < 50_000 + 11_000  # the window, plus at most the one message that crossed it
    hub.credit(s, "r1", 0, sum(sizes))  # what was written out comes back: about as much again
    hub.flush()
    more = [fields["bytes"] for _, _, fields in replies][len(sizes):]
    assert 0 < sum(more) < sum(sizes) + 11_000
    hub.credit(s, "r1", 0, 1 << 20)
    hub.flush()
    assert pushed(replies) == list(range(1, 22))


def test_the_end_of_the_wait_is_a_last_reply_without_open(env):
    hub, clock, replies = env
    s = hub.create_session("dash")
    stream(hub, s, 0)
    clock.now += 11
    hub.expire()
    assert [fields.get("open") for _, _, fields in replies] == [True, None]
    assert s.parked is None


def test_a_reader_that_never_acks_keeps_every_message_of_a_conflatable_run():
    """The long-running SSE report: a full queue of delivered messages must give up those, not the new ones.

    An SSE reader never acks, so after its first 100 messages its queue is
    always full of messages it already has. Each new ``job_progress`` then
    found a full queue and was conflated with the previous, undelivered one,
    counted as dropped: the reader saw about one in four.
    """
    from services.hub.config import HubConfig
    from services.hub.hub import Hub

    replies = []
    hub = Hub(HubConfig(queue_size=100, poll_max_wait=25), lambda *a: replies.append(a))
    s = hub.create_session("dash")
    publish(hub, 99)
    fields = hub.poll(s, PollRequest(b"gw", 1, 0, None, after=0, reader="r", transport="sse", attach=True))
    assert len(fields["messages"]) == 100 and s.sent == 100
    for n in range(83):  # arrive between two polls of the reader
        hub.publish(protocol.TARGET_ALL, {"type": "job_progress", "job_id": "j1", "progress": n})
    fields = hub.poll(s, PollRequest(b"gw", 2, 0, None, after=100, reader="r", transport="sse"))
    assert [m["progress"] for m in fields["messages"]] == list(range(83))
    assert fields["dropped"] == 0 and s.dropped_total == 0
