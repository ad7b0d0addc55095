"""The numbered notifier stream by plain calls: the notifier's replay log, the hub's tracker, their frames."""

import pytest

from services import protocol
from services.hub.config import HubConfig
from services.hub.hub import Hub
from services.hub.store import SqliteStore
from services.hub.stream import MAX_EPOCHS, StreamTracker
from services.notifier.replay import ReplayLog
from services.protocol import ProtocolError
from services.hub.requests import PollRequest


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def payload(n):
    return protocol.encode_ingest(protocol.publish_event("channel", {"type": "t", "n": n}, "c"))[1]


def publish(log, count, target="channel", to="c"):
    """Number and publish ``count`` events; returns their seqs."""
    seqs = [log.number(target, to) for _ in range(count)]
    log.published(seqs[0], [payload(s) for s in seqs])
    return seqs


# ---------------------------------------------------------------- replay log
def test_the_log_numbers_from_one_and_replays_what_follows_a_position():
    log = ReplayLog(size=100, max_bytes=1 << 20, index_size=100, epoch="e1")
    assert publish(log, 5) == [1, 2, 3, 4, 5] and log.head == 5
    lost, first, payloads, upto = log.replay(2)
    assert (lost, first, upto) == ([], 3, 5) and payloads == [payload(3), payload(4), payload(5)]
    assert log.replay(5) == ([], None, [], 5)


def test_evicted_payloads_are_reported_lost_with_their_targets():
    log = ReplayLog(size=3, max_bytes=1 << 20, index_size=100)
    publish(log, 4, "channel", "a")
    publish(log, 3, "client", "x")
    lost, first, payloads, upto = log.replay(0)
    assert lost == [[1, 4, "channel", "a"]] and first == 5 and len(payloads) == 3 and upto == 7
    assert log.evicted == 4


def test_the_byte_bound_evicts_too():
    log = ReplayLog(size=100, max_bytes=3 * len(payload(1)), index_size=100)
    publish(log, 5)
    assert len(log.payloads) == 3 and log.bytes <= 3 * len(payload(1))


def test_what_the_index_forgot_is_reported_without_a_target():
    log = ReplayLog(size=1, max_bytes=1 << 20, index_size=2)
    for i in range(4):  # four runs, alternating targets: the index keeps the last two
        publish(log, 2, "channel", f"ch{i}")
    lost, first, _, upto = log.replay(0)
    assert lost == [[1, 4, None, None], [5, 6, "channel", "ch2"], [7, 7, "channel", "ch3"]]
    assert (first, upto) == (8, 8)


def test_seqs_never_published_are_lost_between_published_ones():
    log = ReplayLog(size=100, max_bytes=1 << 20, index_size=100)
    publish(log, 2)
    dropped = [log.number("all", None) for _ in range(3)]  # dropped from the hold, never published
    assert dropped == [3, 4, 5]
    publish(log, 2)
    lost, first, payloads, upto = log.replay(1)
    assert lost == [] and first == 2 and upto == 2  # the payload run stops where the seqs jump
    lost, first, payloads, upto = log.replay(2)
    assert lost == [[3, 5, "all", None]] and (first, len(payloads), upto) == (6, 2, 7)


def test_a_replay_is_cut_at_its_byte_budget_but_carries_one_event_at_least():
    log = ReplayLog(size=100, max_bytes=1 << 20, index_size=100)
    publish(log, 10)
    size = len(payload(1))
    _, first, payloads, upto = log.replay(0, budget=3 * size)
    assert (first, len(payloads), upto) == (1, 3, 3)
    _, first, payloads, upto = log.replay(3, budget=1)
    assert (first, len(payloads), upto) == (4, 1, 4)


def test_lost_runs_per_answer_are_bounded():
    log = ReplayLog(size=1, max_bytes=1 << 20, index_size=100)
    for i in range(6):
        publish(log, 1, "channel", f"ch{i}")
    lost, first, payloads, upto = log.replay(0, max_lost=2)
    assert lost == [[1, 1, "channel", "ch0"], [2, 2, "channel", "ch1"]] and first is None and upto == 2


# ------------------------------------------------------------------ tracker
def test_a_fresh_hub_joins_where_the_stream_is():
    t = StreamTracker(Clock())
    assert t.live("e1", 41, 2) == 0
    assert t.positions == {"e1": 42} and t.wanted() is None and t.changed


def test_contiguous_messages_apply_and_seen_ones_are_skipped():
    t = StreamTracker(Clock())
    t.load({"e1": 10})
    assert t.live("e1", 11, 3) == 0 and t.positions["e1"] == 13
    assert t.live("e1", 12, 4) == 2 and t.positions["e1"] == 15  # 12, 13 seen: apply from 14
    assert t.live("e1", 14, 2) is None and t.stats["duplicates"] == 4


def test_a_gap_is_not_applied_and_asks_for_a_replay():
    clock = Clock()
    t = StreamTracker(clock)
    t.load({"e1": 10})
    req = t.next_request()  # restored positions are checked with the notifier first
    assert (req.epoch, req.after) == ("e1", 10)
    reply = {"id": req.req_id, "ok": True, "epoch": "e1", "known": True, "head": 10, "after": 10, "upto": 10,
             "lost": [], "more": False}
    assert t.replied(reply, []) == ([], None) and t.wanted() is None
    assert t.live("e1", 14, 1) is None and t.positions["e1"] == 10 and t.stats["gaps"] == 1
    assert t.live("e1", 15, 1) is None and t.stats["gaps"] == 1  # the same gap, still open
    req = t.next_request()
    assert (req.epoch, req.after) == ("e1", 10) and t.next_request() is None  # one in flight at a time
    events = [{"n": 11}, {"n": 12}, {"n": 13}, {"n": 14}, {"n": 15}]
    reply = dict(reply, id=req.req_id, head=15, upto=15, first=11)
    assert t.replied(reply, events) == ([], 0)
    assert t.positions["e1"] == 15 and t.stats["replayed"] == 5 and t.wanted() is None


def test_replayed_events_already_applied_meanwhile_are_skipped():
    t = StreamTracker(Clock())
    t.load({"e1": 10})
    req = t.next_request()
    t.live("e1", 11, 2)  # the live stream moved on while the request was out
    reply = {"id": req.req_id, "ok": True, "epoch": "e1", "known": True, "head": 14, "after": 10, "upto": 14,
             "lost": [], "more": False, "first": 11}
    assert t.replied(reply, [{}, {}, {}, {}]) == ([], 2) and t.positions["e1"] == 14


def test_lost_runs_are_returned_for_counting_and_unknown_ones_counted_here():
    t = StreamTracker(Clock())
    t.load({"e1": 0})
    req = t.next_request()
    reply = {"id": req.req_id, "ok": True, "epoch": "e1", "known": True, "head": 20, "after": 0, "upto": 20,
             "lost": [[1, 5, None, None], [6, 9, "channel", "jobs"], [10, 10, "client", "c1"]], "more": False,
             "first": 11}
    lost, start = t.replied(reply, [{}] * 10)
    assert lost == [("channel", "jobs", 4), ("client", "c1", 1)] and start == 0
    assert (t.stats["lost"], t.stats["lost_unknown"], t.positions["e1"]) == (5, 5, 20)


def test_a_stale_or_unexpected_answer_changes_nothing():
    t = StreamTracker(Clock())
    t.load({"e1": 3})
    req = t.next_request()
    reply = {"id": req.req_id + 7, "ok": True, "epoch": "e1", "known": True, "head": 9, "after": 3, "upto": 9,
             "lost": [[4, 9, "all", None]], "more": False}
    assert t.replied(reply, []) == ([], None) and t.positions["e1"] == 3 and t.request is req


def test_an_unanswered_request_is_sent_again_after_the_timeout():
    clock = Clock()
    t = StreamTracker(clock, timeout=2.0)
    t.load({"e1": 3})
    first = t.next_request()
    clock.now += 1.0
    assert t.next_request() is None and t.next_wake() == first.deadline
    clock.now += 1.5
    again = t.next_request()
    assert again.req_id != first.req_id and t.stats["replay_timeouts"] == 1


def test_a_request_that_could_not_be_sent_is_retried_a_little_later():
    clock = Clock()
    t = StreamTracker(clock)
    t.load({"e1": 3})
    t.next_request()
    t.not_sent()
    assert t.next_request() is None
    clock.now += 1.0
    assert t.next_request() is not None


def test_a_heartbeat_ahead_of_the_position_wants_the_tail():
    t = StreamTracker(Clock())
    t.live("e1", 1, 5)
    t.heartbeat("e1", 5)
    assert t.wanted() is None
    t.heartbeat("e1", 8)
    assert t.wanted() == ("e1", 5) and t.describe()["behind"] == 3


def test_a_new_notifier_run_is_followed_from_its_start_and_the_old_run_asked_about():
    t = StreamTracker(Clock())
    t.live("old", 1, 5)
    t.heartbeat("old", 7)  # the old run had published 6 and 7, which never arrived
    assert t.live("new", 3, 1) is None  # a hub that followed a run before replays a new one from seq 0
    assert t.positions == {"old": 5, "new": 0} and t.current == "new"
    req = t.next_request()
    assert (req.epoch, req.after) == ("old", 5)
    gone = {"id": req.req_id, "ok": True, "epoch": "new", "known": False, "head": 3, "after": 5, "upto": 5,
            "lost": [], "more": False}
    assert t.replied(gone, []) == ([], None)
    assert "old" not in t.positions and t.stats["lost_unknown"] == 2 and t.stats["epochs_gone"] == 1
    assert t.live("old", 8, 1) is None  # a late message of a run given up is ignored: it was counted
    req = t.next_request()
    assert (req.epoch, req.after) == ("new", 0)


def test_positions_are_bounded_to_a_few_runs():
    t = StreamTracker(Clock())
    for i in range(MAX_EPOCHS + 2):
        t.live(f"e{i}", 1, 1)
    assert len(t.positions) == MAX_EPOCHS and t.stats["epochs_gone"] == 2


def test_load_ignores_malformed_positions():
    t = StreamTracker(Clock())
    t.load({"e1": 4, "e2": "x", 3: 1, "e3": -1})
    assert t.positions == {"e1": 4}


# ------------------------------------------------------------------- frames
def test_stream_frames_round_trip_with_and_without_a_position():
    frames = protocol.encode_stream_run(protocol.TOPIC_PUBLISH, [payload(1), payload(2)], "e1", 7)
    topic, events, position = protocol.decode_stream(frames)
    assert topic == protocol.TOPIC_PUBLISH and len(events) == 2 and position == ("e1", 7)
    assert protocol.decode_stream(frames[:3])[2] is None
    with pytest.raises(ProtocolError):
        protocol.decode_stream(frames[:3] + [protocol.encode_record({"epoch": "", "seq": 1})])
    with pytest.raises(ProtocolError):
        protocol.decode_stream(frames[:3] + [protocol.encode_record({"epoch": "e", "seq": -1})])


def test_notifier_requests_are_checked_and_answers_decoded():
    req, body = protocol.decode_notifier_request(
        protocol.encode_notifier_request(protocol.OP_REPLAY, 4, epoch="e1", after=9))
    assert (req["op"], req["epoch"], req["after"], body) == ("replay", "e1", 9, None)
    req, body = protocol.decode_notifier_request(protocol.encode_notifier_request(protocol.OP_PUBLISH, 5, payload(1)))
    assert req["op"] == "publish" and body == payload(1)
    for bad in (protocol.encode_notifier_request(protocol.OP_REPLAY, 1, epoch="e1"),  # no 'after'
                protocol.encode_notifier_request(protocol.OP_PUBLISH, 2),  # no event
                protocol.encode_notifier_request("nope", 3)):
        with pytest.raises(ProtocolError) as info:
            protocol.decode_notifier_request(bad)
        assert info.value.req_id is not None
    frames = protocol.encode_notifier_reply(4, protocol.pack_batch([payload(1), payload(2)]), epoch="e1", known=True,
                                            head=2, after=0, upto=2, lost=[[1, 1, "all", None]], more=False, first=2)
    reply, events = protocol.decode_replay(frames)
    assert reply["lost"] == [[1, 1, "all", None]] and len(events) == 2
    bad = protocol.encode_notifier_reply(4, epoch="e1", known=True, head=2, after=0, upto=2,
                                         lost=[[3, 1, "all", None]], more=False)
    with pytest.raises(ProtocolError):
        protocol.decode_replay(bad)


# ------------------------------------------------------------------- store
def test_the_position_commits_with_the_state_and_only_then(tmp_path):
    def start():
        store = SqliteStore(str(tmp_path / "hub.sqlite3"))
        hub = Hub(HubConfig(), lambda *a: None, store=store)
        hub.stream = StreamTracker(Clock(), changes=hub.changes)
        hub.restore(store.load())
        return store, hub

    store, hub = start()
    session = hub.create_session("lightroom")
    hub.subscribe(session, ["c"])
    assert hub.stream.live("e1", 1, 2) == 0
    hub.publish("channel", {"type": "t", "n": 1}, "c")
    hub.publish("channel", {"type": "t", "n": 2}, "c")
    store.commit(hub.changes)
    assert not hub.stream.changed
    assert hub.stream.live("e1", 3, 1) == 0  # applied, then the hub dies before its commit
    hub.publish("channel", {"type": "t", "n": 3}, "c")
    store.db.close()
    store, hub = start()
    assert hub.stream.positions == {"e1": 2} and hub.stream.wanted() == ("e1", 2)
    queued = [m["n"] for _, m in hub.sessions[session.client_id].queue if m["type"] == "t"]
    assert queued == [1, 2]  # the queue and the position agree: seq 3 is asked for again, applied once
    store.close()


def test_a_lost_run_is_counted_to_the_clients_its_target_names_with_a_gap_in_seq():
    hub = Hub(HubConfig(), lambda *a: None)
    watcher, other, lone = (hub.create_session(t) for t in ("lightroom", "lightroom", "dashboard"))
    hub.subscribe(watcher, ["jobs"])
    assert hub.count_lost("channel", "jobs", 3) == 1
    assert hub.count_lost("client_type", "lightroom", 2) == 2
    assert hub.count_lost("client", lone.client_id, 1) == 1 and hub.count_lost("client", "nobody", 1) == 0
    assert (watcher.dropped_total, other.dropped_total, lone.dropped_total) == (5, 2, 1)
    assert hub.stats["dropped"] == 8
    before = watcher.next_seq
    hub.publish("channel", {"type": "t"}, "jobs")
    fields = hub.poll(watcher, PollRequest(b"gw", 1, 0, None))
    assert fields["dropped"] == 5 and fields["messages"][-1]["seq"] == before
    assert before == 2 + 5  # the welcome took seq 1; the five lost ones took 2-6
