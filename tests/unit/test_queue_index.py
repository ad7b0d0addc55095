"""The conflation index of a full queue (services/hub/queues.py): same rules, work that does not grow with the queue.

Issue 13, point 2: idle subscribers with full queues made every publish scan
each of their queues. The rules are the ones in conflation.py's docstring
(tests/unit/test_conflation.py); here a straightforward scan of a list is the
reference they are checked against, on random traffic, and the work a
publish costs is counted (Python lines run, conflation keys computed) for a
short and a long queue.
"""

import itertools
import random
import sys

import pytest

from services import protocol
from services.hub import conflation
from services.hub.config import HubConfig
from services.hub.hub import Hub
from services.hub.sessions import Session
from services.hub.requests import PollRequest


# ------------------------------------------------------------ the reference
class Reference:
    """A session whose queue is a plain list, made room in by scanning it (the rules as written)."""

    def __init__(self, limit):
        self.queue = []
        self.limit = limit
        self.next_seq = 1
        self.sent = 0

    def publish(self, message):
        removed = []
        if len(self.queue) >= self.limit:
            wanted = conflation.key(message)
            if wanted is not None:
                removed = [e for e in self.queue if e[0] > self.sent and conflation.key(e[1]) == wanted]
            if not removed:
                removed = [e for e in self.queue if e[0] > self.sent and conflation.key(e[1]) is not None][:1]
            if removed:
                gone = {e[0] for e in removed}
                self.queue = [e for e in self.queue if e[0] not in gone]
            elif wanted is not None:
                self.next_seq += 1
                return removed
        if len(self.queue) >= self.limit:
            self.queue.pop(0)
        self.queue.append((self.next_seq, message))
        self.next_seq += 1
        return removed

    def ack(self, seq):
        self.queue = [e for e in self.queue if e[0] > seq]
        self.sent = max(self.sent, seq)


def _session(limit):
    return Session("c", "lightroom", limit, 0.0, "")


def _publish(session, message):
    removed = []
    if len(session.queue) >= session.limit:
        accept, removed = conflation.make_room(session, message)
        if not accept:
            return removed
    session.enqueue(message)
    return removed


def _message(rng, n):
    kind = rng.random()
    if kind < 0.3:
        return {"type": "job_progress", "job_id": f"j{rng.randrange(5)}", "n": n}
    if kind < 0.45:
        return {"type": "system_status", "channel": rng.choice(["system", "gpu"]), "n": n}
    return {"type": rng.choice(["job_completed", "photo_imported"]), "n": n}


@pytest.mark.parametrize("seed", range(40))
def test_the_index_removes_exactly_what_scanning_the_queue_removes(seed):
    rng = random.Random(seed)
    limit = rng.choice([1, 2, 4, 8, 30])
    ref, session = Reference(limit), _session(limit)
    for n in range(600):
        roll = rng.random()
        if roll < 0.8:
            message = _message(rng, n)
            assert _publish(session, message) == ref.publish(message), n
        elif roll < 0.9 and ref.queue:  # a reader takes some (in flight, not acked), or resumes lower
            session.sent = ref.sent = rng.randrange(ref.sent // 2, ref.queue[-1][0] + 1)
        elif ref.queue:
            seq = rng.choice(ref.queue)[0]
            session.ack(seq)
            ref.ack(seq)
            session.sent = ref.sent
        assert list(session.queue) == ref.queue, n
        assert len(session.queue) == len(ref.queue)
        if ref.queue:
            assert session.queue[0] == ref.queue[0] and session.queue[-1] == ref.queue[-1]
            middle = rng.randrange(len(ref.queue))
            assert session.queue[middle] == ref.queue[middle]
            assert session.queue.after(ref.queue[middle][0]) == ref.queue[middle + 1:]
            above, count = rng.randrange(ref.queue[-1][0] + 1), rng.randrange(1, 6)
            assert session.queue.since(above, count) == [e for e in ref.queue if e[0] > above][:count]
        assert session.next_seq == ref.next_seq  # a keyed newcomer dropped by rule 3 used up its seq


# ------------------------------------------------------------- counted work
class Counter:
    """Counts the Python lines run inside a call, and conflation keys computed."""

    def __init__(self, monkeypatch):
        self.lines = 0
        self.keys = 0
        real = conflation.key

        def counting_key(message):
            self.keys += 1
            return real(message)

        monkeypatch.setattr(conflation, "key", counting_key)

    def _trace(self, frame, event, arg):
        if event == "line":
            self.lines += 1
        return self._trace

    def run(self, fn, *args):
        sys.settrace(self._trace)
        try:
            return fn(*args)
        finally:
            sys.settrace(None)


def _full_hub(queue_size, sessions, keyed_every):
    ids = (f"client-{n}" for n in itertools.count(1))
    # A short channel history: its own (amortised, queue-independent) upkeep stays out of the comparison.
    hub = Hub(HubConfig(queue_size=queue_size, history_size=20), lambda *a: None, clock=lambda: 1000.0,
              wallclock=lambda: 1_700_000_000.0, new_id=lambda: next(ids))
    for _ in range(sessions):
        s = hub.create_session("dashboard")
        hub.subscribe(s, ["jobs"])
        hub.poll(s, PollRequest(b"gw", 0, 0, None))  # drains the welcome; never polls again
    for n in range(queue_size):  # full: completions, and a progress of its own job every ``keyed_every``
        keyed = keyed_every and n % keyed_every == 0
        kind = {"type": "job_progress", "job_id": f"old{n}"} if keyed else {"type": "job_completed"}
        hub.publish(protocol.TARGET_CHANNEL, dict(kind, n=n), "jobs")
    return hub


def _work_per_publish(monkeypatch, queue_size, keyed_every, sessions=3, count=300):
    hub = _full_hub(queue_size, sessions, keyed_every)
    counter = Counter(monkeypatch)
    rng = random.Random(7)

    def traffic():
        for n in range(count):
            hub.publish(protocol.TARGET_CHANNEL, _message(rng, n), "jobs")

    counter.run(traffic)
    assert all(len(s.queue) == queue_size for s in hub.sessions.values())
    return counter.lines / count, counter.keys / count


@pytest.mark.parametrize("short, keyed_every", [(100, 0), (2000, 5)])
def test_making_room_costs_the_same_in_a_short_queue_and_in_one_of_20000(monkeypatch, short, keyed_every):
    """Full of messages without a key (every rule 2 search would scan it all), or with plenty of old progress
    (rule 2 takes one of those each time): the same traffic costs the same work at both lengths."""
    short_lines, short_keys = _work_per_publish(monkeypatch, short, keyed_every)
    long_lines, long_keys = _work_per_publish(monkeypatch, 20_000, keyed_every)
    # One key per published message, computed once for every recipient, never per queued entry.
    assert short_keys == long_keys == 1
    # A scan would cost thousands of lines per publish here; the index costs the same few at any length.
    assert long_lines <= short_lines * 1.25 + 10, (short_lines, long_lines)


def test_a_fanout_to_full_queues_costs_the_same_per_recipient_at_any_length(monkeypatch):
    short_lines, _ = _work_per_publish(monkeypatch, 1000, 5, sessions=20, count=100)
    long_lines, _ = _work_per_publish(monkeypatch, 10_000, 5, sessions=20, count=100)
    assert long_lines <= short_lines * 1.25 + 10, (short_lines, long_lines)


def test_removed_entries_do_not_pile_up(monkeypatch):
    """Lazily deleted entries are swept once they outnumber the live ones: memory stays O(queue)."""
    session = _session(50)
    rng = random.Random(3)
    for n in range(20_000):
        _publish(session, _message(rng, n))
    queue = session.queue
    assert len(queue) == 50
    assert len(queue._entries) + len(queue._dead) <= 3 * 50 + 64
    index = sum(len(seqs) for seqs in queue._by_key.values()) + len(queue._held) + len(queue._open)
    assert index <= 3 * 50 + 64


def _store_work_per_turn(tmp_path, monkeypatch, queue_size):
    from services.hub.store import SqliteStore

    hub = _full_hub(queue_size, 3, 5)
    store = hub.store = SqliteStore(str(tmp_path / f"hub{queue_size}.sqlite3"))
    store.commit(hub.changes)
    counter = Counter(monkeypatch)
    rng = random.Random(11)

    def turns():
        for n in range(200):  # a few messages a turn, conflating in every full queue
            hub.publish(protocol.TARGET_CHANNEL, _message(rng, n), "jobs")
            if n % 4 == 3:
                store.commit(hub.changes)

    counter.run(turns)
    store.close()
    return counter.lines / 50


def test_the_store_writes_a_turn_of_full_queues_with_the_same_work_at_any_length(tmp_path, monkeypatch):
    """A turn's fresh entries are read from the newest back: never a walk over what earlier turns wrote."""
    short = _store_work_per_turn(tmp_path, monkeypatch, 1000)
    long = _store_work_per_turn(tmp_path, monkeypatch, 10_000)
    assert long <= short * 1.25 + 20, (short, long)


def test_a_reader_resuming_anywhere_in_a_queue_with_gaps_gets_exactly_what_is_above_it(make_hub):
    """Conflation leaves gaps in a queue's seqs: taking "after seq N" must not count positions by seq."""
    hub, _, replies = make_hub(queue_size=4)
    s = hub.create_session("lightroom")
    hub.subscribe(s, ["jobs"])
    hub.poll(s, PollRequest(b"gw", 0, 0, None))
    for fields in ({"type": "job_completed", "job_id": "x"}, {"type": "job_progress", "job_id": "a"},
                   {"type": "job_completed", "job_id": "y"}, {"type": "job_completed", "job_id": "z"},
                   {"type": "job_completed", "job_id": "w"}):  # the last one removes the progress (seq 3)
        hub.publish(protocol.TARGET_CHANNEL, fields, "jobs")
    assert [seq for seq, _ in s.queue] == [2, 4, 5, 6]
    for n, after in enumerate(range(1, 7)):
        reply = hub.poll(s, PollRequest(b"gw", n, 0, None, after=after, reader=f"r{n}", attach=True))
        assert [m["seq"] for m in reply["messages"]] == [seq for seq, _ in s.queue if seq > after], after
    # A stream resuming after 5 is pushed seq 6 (it used to find nothing while 6 was pending, and fail).
    assert hub.poll(s, PollRequest(b"gw", 9, 10, None, after=5, reader="rs", attach=True, window=10,
                                   window_bytes=1 << 20)) is None
    assert [m["seq"] for m in replies[-1][2]["messages"]] == [6]
