"""One client's session: its bounded queue, sequence numbers and parked poll."""

from collections import deque
from itertools import islice

import orjson

from services.hub.conflation import UNKNOWN
from services.hub.metrics import Published
from services.hub.queues import MessageQueue

# Ranges of delivered-then-evicted seqs a session remembers (see Session.rewind).
MAX_SILENT_RANGES = 64
# Loss reports a session keeps until the client confirms them (see Session.take_dropped).
MAX_REPORTS = 64
# ``reports`` and ``silent`` of most sessions stay empty: they share this stand-in until their first
# entry (a deque costs 760 bytes; thousands of idle clients, docs/PERFORMANCE.md).
_NONE_YET = ()


def json_entry(seq, message):
    """One queued message as a poll answer carries it in JSON, with its ``seq`` (a ``Session.take`` render).

    A published message is encoded once, for all the clients it goes to
    (kept on it as ``json``), and each answer adds its own seq to that text;
    ``b""`` when it cannot be encoded (``Hub._poll_fields`` then answers with maps).
    """
    stray = "seq" in message  # a seq of its own: the client's seq replaces it, as in a map
    text = None if stray else getattr(message, "json", None)
    if text is None:
        try:
            text = orjson.dumps({**message, "seq": seq} if stray else message)
        except (TypeError, ValueError):
            return b""
        if stray:
            return text
        if type(message) is Published:
            message.json = text  # shared by every recipient, never changed
    if len(text) <= 2:  # "{}": no key to follow
        return b'{"seq":%d}' % seq
    return text[:-1] + b',"seq":%d}' % seq


class Parked:
    """A long-poll waiting in the hub: who to answer, and until when."""

    __slots__ = ("peer", "req_id", "deadline", "ack_mode", "start", "window", "window_bytes", "json")

    def __init__(self, peer, req_id, deadline, ack_mode, start=None, window=None, window_bytes=None, json=False):
        self.peer = peer
        self.req_id = req_id
        self.deadline = deadline
        self.ack_mode = ack_mode
        self.start = start  # deliver only seqs above this (a stream's "after"); None: from the head
        # A stream (docs/TRANSPORTS.md, rule 5): pushed to as messages are queued, while this credit
        # (messages, bytes) the gateway granted lasts; None: a plain poll, answered once.
        self.window = window
        self.window_bytes = window_bytes
        self.json = json  # answer with the messages as one JSON array (a plain poll from an HTTP gateway)


class Session:
    """A connected client as the hub sees it.

    The queue holds ``(seq, message)`` pairs; ``message`` dicts may be shared
    between sessions and are never mutated. Sequence numbers start at 1 and
    grow by one per message queued for this client, dropped or not, so a
    client sees a gap exactly where it lost messages.

    Delivery bookkeeping (docs/TRANSPORTS.md): ``acked`` is the highest seq
    the client confirmed (or drained); ``sent`` the highest seq handed to the
    current reader. When the queue is full its oldest entry goes; if the
    reader already has it (seq <= sent) that is not a loss and is only noted
    in ``silent`` (ranges of seqs); it becomes one if a reader later resumes
    below it (``rewind``). So a reader that never acks (SSE) cannot make the
    overflow count lie, and memory stays within ``limit`` entries.
    """

    __slots__ = (
        "client_id", "client_type", "client_name", "connected_at", "last_seen",
        "last_poll", "subscriptions", "queue", "limit", "next_seq",
        "dropped_total", "dropped_unreported", "reports", "reports_dirty", "parked", "info",
        "acked", "sent", "silent", "reader", "transport",
        "secret", "send_bucket",  # set by the hub's Admission (services/hub/admission.py)
        "ephemeral",  # removed when its stream ends (a dashboard tab): docs/TRANSPORTS.md
    )

    def __init__(self, client_id, client_type, limit, now, wall_iso):
        self.client_id = client_id
        self.client_type = client_type
        self.client_name = None
        self.connected_at = wall_iso
        self.last_seen = now
        self.last_poll = None
        self.subscriptions = set()
        self.queue = MessageQueue()  # a deque's reads, plus conflation's index (services/hub/queues.py)
        self.limit = limit
        self.next_seq = 1
        self.dropped_total = 0
        self.dropped_unreported = 0
        self.reports = _NONE_YET  # [upto, count]: losses told in replies the client has not confirmed yet
        self.reports_dirty = False  # reports changed since the store last wrote them (with the session's meta)
        self.parked = None
        self.info = {}
        self.acked = 0
        self.sent = 0
        self.silent = _NONE_YET  # [lo, hi] seq ranges evicted after delivery, not yet acked
        self.reader = None  # token of the attached WebSocket/SSE reader; None: plain polls
        self.transport = None  # "poll", "websocket" or "sse": how it last read
        self.secret = None  # proves the client owns this id (returned by the handshake)
        self.send_bucket = None
        self.ephemeral = False

    def enqueue(self, message, key=UNKNOWN):
        """Queue ``message``; when full the oldest goes. Returns True when that was a loss.

        ``key`` is the message's conflation key when the caller computed it
        already (a fan-out computes it once for every recipient).
        """
        lost = False
        if len(self.queue) >= self.limit:
            seq = self.queue.popleft()[0]
            if seq <= self.sent:
                self._note_silent(seq)
            else:
                lost = True
                self._count_lost(1)
        if key is UNKNOWN:
            self.queue.append((self.next_seq, message))
        else:
            self.queue.append((self.next_seq, message), key)
        self.next_seq += 1
        return lost

    def _count_lost(self, count):
        self.dropped_total += count
        self.dropped_unreported += count

    def _note_silent(self, seq):
        silent = self.silent
        if silent and silent[-1][1] == seq - 1:
            silent[-1][1] = seq
            return
        if silent is _NONE_YET:
            silent = self.silent = deque()
        silent.append([seq, seq])
        if len(silent) > MAX_SILENT_RANGES:
            lo, hi = silent.popleft()  # keep the bookkeeping bounded: assume the oldest lost
            self._count_lost(hi - lo + 1)

    def ack(self, seq):
        """Forget every queued message up to and including ``seq`` (the client has them)."""
        seq = min(seq, self.next_seq - 1)
        if seq <= self.acked:
            return
        self.acked = seq
        if self.sent < seq:
            self.sent = seq
        self.confirm(seq)
        queue = self.queue
        entries = queue._entries  # its ends are always live entries (services/hub/queues.py); popleft keeps it
        while entries and entries[0][0] <= seq:
            queue.popleft()
        silent = self.silent
        while silent and silent[0][0] <= seq:
            if silent[0][1] <= seq:
                silent.popleft()
            else:
                silent[0][0] = seq + 1

    def rewind(self, start):
        """A reader resumes after ``start``: delivered-then-evicted seqs above it are lost now.

        Returns how many were counted; afterwards ``sent`` is ``start``.
        """
        lost = 0
        if start < self.sent:
            silent = self.silent
            while silent and silent[-1][1] > start:
                lo, hi = silent[-1]
                if lo > start:
                    silent.pop()
                    lost += hi - lo + 1
                else:
                    silent[-1][1] = start
                    lost += hi - start
            self.sent = start
            if lost:
                self._count_lost(lost)
        return lost

    def pending(self, start):
        """True when a message with a seq above ``start`` is queued."""
        entries = self.queue._entries  # read directly: once per poll and per queued message (both ends live)
        return bool(entries) and entries[-1][0] > start

    def take(self, batch, keep, start=None, budget=None, size_of=None, taken=None, render=None):
        """The next ``batch`` messages, each with its seq, and the bytes they take by ``size_of``.

        With ``keep`` (the client acknowledges) they stay queued until acked,
        and only seqs above ``start`` are taken; without it they are removed
        now, as the seed's drain-on-poll did. With ``budget`` the run stops
        before the message that would take it past ``budget`` bytes, but
        always holds at least one message (one message is bounded by the
        largest frame, so it always fits a reply). ``taken``, a list, gets the
        queued ``(seq, message)`` entries taken (their seqs, and the originals
        the hub's metrics read). Each message is a new map with its ``seq``,
        or with ``render`` what ``render(seq, message)`` makes of it (bytes,
        measured by their length: ``json_entry`` above).
        """
        queue = self.queue
        out = []
        append = out.append
        entries = taken if taken is not None else []
        keep_entry = entries.append
        total = 0
        if keep:
            run = queue.since(start or 0, batch)  # seqs have gaps where conflation removed
        else:
            run = islice(queue, batch)  # the live entries from the head
        for entry in run:
            seq, message = entry
            if render is not None:
                msg = render(seq, message)
                size = len(msg)
            else:
                msg = dict(message)
                msg["seq"] = seq
                size = size_of(msg) if size_of is not None else 0
            if out and budget is not None and total + size > budget:
                break
            total += size
            append(msg)
            keep_entry(entry)
        if out:
            last = entries[-1][0]
            if keep:
                if last > self.sent:
                    self.sent = last
            else:
                for _ in range(len(out)):
                    queue.popleft()
                self.acked = max(self.acked, last)
                self.sent = max(self.sent, self.acked)
        return out, total

    def take_dropped(self, upto=None):
        """How many messages were lost since the last report, resetting the count.

        With ``upto`` (acknowledged delivery: the first seq of the reply that
        tells the count, which a push transport writes right after the notice;
        or the poll's start when it carries none) the report is kept until the
        client confirms that reply, by acknowledging or resuming at ``upto`` or
        above. A client that comes back below it never
        got the reply (the gateway gave up on it, the link died with it in
        flight): ``reads_from`` counts the report again, so ``dropped`` adds up to
        exactly what the client never received (docs/TRANSPORTS.md).
        """
        dropped, self.dropped_unreported = self.dropped_unreported, 0
        if dropped and upto is not None:
            self.reports_dirty = True
            reports = self.reports
            if reports and reports[-1][0] >= upto:
                reports[-1][1] += dropped  # told with no message past the last report: one confirmation for both
            else:
                if reports is _NONE_YET:
                    reports = self.reports = deque()
                reports.append([upto, dropped])
                if len(reports) > MAX_REPORTS:
                    reports.popleft()  # bounded: the oldest is taken as received
        return dropped

    def restore_reports(self, reports):
        """The loss reports a stored session still had (``[upto, count]`` pairs), after a restart."""
        if reports:
            self.reports = deque([upto, count] for upto, count in reports)

    def confirm(self, seq):
        """The client has every reply up to ``seq``: reports of losses told there need no repeating."""
        reports = self.reports
        while reports and reports[0][0] <= seq:
            reports.popleft()
            self.reports_dirty = True

    def reads_from(self, start):
        """The client reads on from ``start``: reports told above it never arrived and are told again."""
        self.confirm(start)
        reports = self.reports
        while reports:
            self.dropped_unreported += reports.popleft()[1]
            self.reports_dirty = True
