"""The soak checker: what each client should have received, what it did, and how each loss was told.

Every payload carries its publisher's id and number (``pub``, ``n``). A
client's expected set is every publication its publisher saw accepted
(HTTP 200, a ZeroMQ send that returned True) on a channel the client is
subscribed to, or sent to it by name. From what the client received, in
arrival order, with its own per-client ``seq``:

- **duplicated**: one payload under two different seqs (the same seq twice
  is a redelivery a client skips by seq, as docs/TRANSPORTS.md says: noted,
  not an error);
- **reordered**: a new seq below one already seen, or a payload numbered
  below one already received from the same publisher;
- **lost**: expected and never received, split into
  **counted** (the client can know: the payload matches a gap in its seqs,
  or its ``dropped`` figures / ``messages_dropped`` notices cover more than
  its gaps), **undelivered** (never reached the client, but its seq was
  given: the hub still held it when the run ended, past the final drain)
  and **silent** (no trace at all);
- a counted loss at a seq gap is **justified** only when the queue bound was
  actually exceeded there: a queue of ``queue_size`` holding the missing
  seq means a later seq at least ``queue_size - 1`` above it was queued.

Refused publications (HTTP 503, a timeout, a ZeroMQ send that failed) are
not expected: the publisher knows; they are reported apart.

Each figure is also given per fault window: a payload belongs to the window
of the last fault that began no later than ``LOOKBACK`` seconds after it
was published (events in flight when a fault strikes are its victims).
"""

import bisect
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field

LOOKBACK = 1.0
FIGURES = ("received", "counted", "undelivered", "silent", "duplicated", "reordered")


@dataclass
class Publication:
    """One publish attempt: ``target`` is ``("channel", name)`` or ``("client", client_name)``."""

    pub: str
    n: int
    t: float
    target: tuple
    accepted: bool
    reason: str = ""


class ClientLog:
    """What one checked client saw, recorded by its thread (appends under a lock)."""

    def __init__(self, name, transport, channels):
        self.name = name
        self.transport = transport
        self.channels = frozenset(channels)
        self.sessions = []  # client ids, in order; an arrival names its session by index
        self.arrivals = []  # (session, seq, key or None, t); key = (pub, n)
        self.told = []  # (t, count): dropped figures and messages_dropped notices
        self.events = Counter()  # reconnects, errors, by kind
        self.keys = set()  # payload keys received (for the drain's progress check)
        self.final = None  # the hub's view of the last session when the run ended: {"next_seq", "queue_depth"}
        self._lock = threading.Lock()

    def new_session(self, client_id):
        with self._lock:
            self.sessions.append(client_id)
            return len(self.sessions) - 1

    def arrival(self, session, seq, message, t):
        pub, n = message.get("pub"), message.get("n")
        key = (pub, n) if isinstance(pub, str) and isinstance(n, int) else None
        with self._lock:
            self.arrivals.append((session, seq, key, t))
            if key is not None:
                self.keys.add(key)

    def dropped(self, count, t):
        if count:
            with self._lock:
                self.told.append((t, count))

    def event(self, kind):
        with self._lock:
            self.events[kind] += 1

    def has_all(self, keys):
        with self._lock:
            return keys <= self.keys


def expected_for(log, publications):
    """The accepted publications ``log``'s client should receive, by key."""
    out = {}
    for p in publications:
        kind, name = p.target
        if p.accepted and ((kind == "channel" and name in log.channels) or (kind == "client" and name == log.name)):
            out[(p.pub, p.n)] = p
    return out


class Windows:
    """Fault windows: ``[(start, label)]`` in time order, the first being the baseline."""

    def __init__(self, windows):
        self.windows = list(windows)
        self.starts = [start - LOOKBACK for start, _ in self.windows]

    def index(self, t):
        return max(0, bisect.bisect_right(self.starts, t) - 1)

    def label(self, i):
        return self.windows[i][1]

    def __len__(self):
        return len(self.windows)


@dataclass
class ClientResult:
    """The figures of one client, in total and per window (index → Counter of FIGURES)."""

    name: str
    transport: str
    total: Counter = field(default_factory=Counter)
    windows: dict = field(default_factory=lambda: defaultdict(Counter))
    info: Counter = field(default_factory=Counter)
    by_pub: dict = field(default_factory=lambda: defaultdict(Counter))  # publisher → its lost figures


def longest_stall(log, expected, end):
    """``(seconds, since)``: the longest a message due to the client waited while nothing at all arrived.

    For each stretch between two arrivals (and from the last one to ``end``),
    the time from the first expected publication inside it to its end.
    """
    due = sorted(p.t for p in expected.values())
    times = [t for _, _, _, t in log.arrivals] + [end]
    worst, since, last = 0.0, None, None
    for t in times:
        if last is not None:
            i = bisect.bisect_right(due, last)
            if i < len(due) and due[i] < t and t - due[i] > worst:
                worst, since = t - due[i], due[i]
        last = t if last is None else max(last, t)
    return worst, since


def check_client(log, publications, windows, queue_size, end=None, max_stall=None):
    """Classify everything ``log``'s client should have received; returns a ``ClientResult``.

    With ``end`` (when the run stopped looking) and ``max_stall``, a client that went longer than
    ``max_stall`` seconds without receiving anything while a message was due to it is a failure
    (``stalled``): a reader cut off while its connection stays open looks like that.
    """
    result = ClientResult(log.name, log.transport)
    expected = expected_for(log, publications)
    published = {(p.pub, p.n): p for p in publications}

    def add(figure, key=None, t=None, count=1):
        p = published.get(key)
        w = windows.index(p.t if p is not None else t)
        result.total[figure] += count
        result.windows[w][figure] += count
        if figure in ("counted", "undelivered", "silent") and key is not None:
            result.by_pub[key[0]][figure] += count

    seen = {}  # (session, seq) -> key
    max_seq = defaultdict(int)
    received = {}  # key -> (session, seq)
    max_n = {}
    for session, seq, key, t in log.arrivals:
        pos = (session, seq)
        if pos in seen:
            result.info["redelivered" if seen[pos] == key else "seq_conflicts"] += 1
            continue
        seen[pos] = key
        backwards = seq < max_seq[session]
        max_seq[session] = max(max_seq[session], seq)
        if key is None:
            if backwards:
                add("reordered", t=t)
            continue
        if key in received:
            add("duplicated", key)
            continue
        received[key] = pos
        if key not in expected:
            # A refused publish the hub carried out after all (the gateway had given up on it) may land
            # anywhere: noted, and left out of the order check.
            result.info["unexpected" if key not in published or published[key].accepted else "refused_but_received"] += 1
            if backwards:
                add("reordered", key)
            continue
        if backwards or key[1] < max_n.get(key[0], 0):
            add("reordered", key)
        max_n[key[0]] = max(max_n.get(key[0], 0), key[1])
        add("received", key)

    gaps = sorted((s, q) for s, top in max_seq.items() for q in range(1, top + 1) if (s, q) not in seen)
    told = sum(count for _, count in log.told)
    result.info.update(gaps=len(gaps), told=told, untold_gaps=max(0, len(gaps) - told),
                       sessions=len(log.sessions))
    # A seq the hub gave and never delivered must be told (dropped, messages_dropped): one it kept quiet
    # about is a silent loss even when each missing payload can be matched to some gap.
    result.total["untold"] += result.info["untold_gaps"]
    result.info.update({f"event:{k}": v for k, v in log.events.items()})

    # Where in the seq stream each missing payload would sit: between the seqs of its
    # publisher's neighbours that did arrive. Match each to a gap there (earliest end first).
    by_pub = defaultdict(list)
    for key, pos in received.items():
        by_pub[key[0]].append((key[1], pos))
    for entries in by_pub.values():
        entries.sort()
    missing = []
    for key in expected:
        if key in received:
            continue
        entries = by_pub.get(key[0], [])
        i = bisect.bisect_left(entries, (key[1],))
        lo = entries[i - 1][1] if i > 0 else (-1, 0)
        hi = entries[i][1] if i < len(entries) else (float("inf"), 0)
        missing.append((hi, lo, key))
    missing.sort()
    free = list(gaps)
    unmatched = []
    for hi, lo, key in missing:
        j = bisect.bisect_right(free, lo)
        if j < len(free) and free[j] < hi:
            session, seq = free.pop(j)
            add("counted", key)
            if max_seq[session] < seq + queue_size - 1:
                add("unjustified", key)
        else:
            unmatched.append(key)
    # Seqs the hub gave past the last one received (the newest missing payloads): the newest of them it
    # still held when the run ended (undelivered); older ones it evicted from a full queue (counted).
    tail = held_count = 0
    if log.final is not None and log.sessions:
        tail = max(0, log.final["next_seq"] - 1 - max_seq[len(log.sessions) - 1])
        held_count = min(tail, log.final["queue_depth"])
    unmatched.sort(key=lambda k: published[k].t)
    tail = min(tail, len(unmatched))
    held_count = min(held_count, tail)
    held = unmatched[len(unmatched) - held_count:] if held_count else []
    evicted = unmatched[len(unmatched) - tail:len(unmatched) - held_count]
    unmatched = unmatched[:len(unmatched) - tail]
    for key in evicted:
        add("counted", key)
        add("counted_at_end", key)
    slack = max(0, told - len(gaps))  # told of more than the gaps show (e.g. a link that could not resend)
    for key in unmatched[:slack]:
        add("counted", key)
        add("told_no_gap", key)
    for key in unmatched[slack:]:
        add("silent", key)
    for key in held:
        add("undelivered", key)
    result.info["overtold"] = max(0, slack - len(unmatched))
    if end is not None:
        stall, since = longest_stall(log, expected, end)
        result.info["stall"] = round(stall, 1)
        if max_stall is not None and stall > max_stall:
            result.total["stalled"] += 1
            result.windows[windows.index(since)]["stalled"] += 1
    return result


def failures(results):
    """What makes the run fail: silent or undelivered losses, seq gaps no drop report told, duplicates,
    reordering, unjustified counted losses, clients stalled longer than allowed."""
    total = Counter()
    for r in results:
        total.update(r.total)
    return {k: total[k] for k in ("silent", "untold", "undelivered", "duplicated", "reordered", "unjustified",
                                  "stalled")
            if total[k]}
