"""The hub's place in the notifier's numbered event stream (docs/PROTOCOL.md rules 23-31).

The notifier numbers what it publishes: ``(epoch, seq)``, an epoch per run of
the notifier, seqs from 1. ``StreamTracker`` keeps, per epoch, the last seq
the hub applied (written by the store in the same commit as the state those
events changed), notices a gap (a hub restart, a late join, a pipe that
overflowed), and says which replay to ask the notifier for. Live messages
that do not follow on are set aside: the replay brings them again, in order,
and a seq at or below the position is never applied twice.

What the notifier can no longer resend comes back as lost runs with their
target; the server counts those to the clients concerned. What nobody can
attribute (a run the notifier forgot, or an epoch that is gone with its
notifier) is counted here, in ``lost_unknown``.

Nothing here touches a socket; time comes from ``clock``.
"""

import time
from collections import deque

from services.hub.changes import Changes

MAX_EPOCHS = 4  # notifier runs whose positions are kept
REPLAY_TIMEOUT = 2.0  # seconds to wait for a replay answer before asking again
RETRY_SECONDS = 0.2  # how soon to try again when the request could not be sent (no notifier connected)


class Request:
    """One replay request in flight."""

    __slots__ = ("req_id", "epoch", "after", "deadline")

    def __init__(self, req_id, epoch, after, deadline):
        self.req_id = req_id
        self.epoch = epoch
        self.after = after
        self.deadline = deadline


class StreamTracker:
    """Per notifier epoch: the last seq applied, the highest seq known to exist, the replay to ask for."""

    def __init__(self, clock=time.monotonic, timeout=REPLAY_TIMEOUT, changes=None):
        self.clock = clock
        self.timeout = timeout
        self.positions = {}  # epoch -> last seq applied, oldest epoch first (the store keeps this)
        self.heard = {}  # epoch -> highest seq known to exist (live positions, heartbeats, replay heads)
        self.unchecked = set()  # epochs restored from the store that the notifier was not asked about yet
        self.gone = deque(maxlen=16)  # epochs given up (their loss was counted): their events are ignored
        self.fresh = True  # never followed any epoch: join the stream where it is, replay nothing older
        self.current = None  # the epoch of the newest live message or heartbeat
        self.request = None
        self.next_id = 1
        self.next_try = 0.0
        # The loop's change set (services/hub/changes.py): the positions go in it when they move.
        self.changes = Changes(clock) if changes is None else changes
        self.stats = {"gaps": 0, "replay_requests": 0, "replay_timeouts": 0, "replayed": 0, "duplicates": 0,
                      "lost": 0, "lost_unknown": 0, "epochs_gone": 0}

    @property
    def changed(self):
        """The positions differ from what the store holds."""
        return self.changes.stream is not None

    # ------------------------------------------------------------ storage
    def load(self, positions):
        """Positions read back from the store: ask the notifier about each before trusting the live stream."""
        for epoch, seq in positions.items():
            if not isinstance(epoch, str) or not isinstance(seq, int) or seq < 0:
                continue
            self.positions[epoch] = seq
            self.heard[epoch] = seq
            self.unchecked.add(epoch)
            self.current = epoch
        if self.positions:
            self.fresh = False

    def dump(self):
        """The positions as the store writes them."""
        return dict(self.positions)

    # --------------------------------------------------------- live stream
    def live(self, epoch, first, count):
        """A live message holds events ``first``…``first + count - 1`` of ``epoch``.

        Returns the index of the first event to apply (the position moves past
        them all), or ``None``: nothing to apply (seen already, or a gap, for
        which a replay is now wanted).
        """
        heard = self.heard.get(epoch)
        pos = self._see(epoch, first + count - 1, first - 1)
        if pos is None:
            return None
        if first > pos + 1:
            if heard is None or heard <= pos:  # a new gap, not one already being filled
                self.stats["gaps"] += 1
            return None
        skip = pos + 1 - first
        if skip >= count:
            self.stats["duplicates"] += count
            return None
        self.stats["duplicates"] += skip
        self._move(epoch, first + count - 1)
        return skip

    def heartbeat(self, epoch, seq):
        """The notifier says it has published up to ``seq`` of ``epoch``: a tail the hub missed is wanted."""
        self._see(epoch, seq, seq)

    def _see(self, epoch, last, join_at):
        """Note that ``epoch`` reached ``last``; returns the hub's position in it (``None``: the epoch is gone).

        An epoch met for the first time is followed from its start (its seq
        0), except by a hub that never followed any: that one joins at
        ``join_at``, as a new subscriber does.
        """
        if epoch in self.gone:
            return None
        pos = self.positions.get(epoch)
        if pos is None:
            pos = join_at if self.fresh else 0
            self._adopt(epoch, pos)
        self.current = epoch
        if last > self.heard.get(epoch, 0):
            self.heard[epoch] = last
        return pos

    def _adopt(self, epoch, pos):
        self.fresh = False
        self.positions[epoch] = pos
        self.heard[epoch] = pos
        self.changes.stream = self.positions
        while len(self.positions) > MAX_EPOCHS:
            self._give_up(next(iter(self.positions)))

    def _give_up(self, epoch):
        """Stop following ``epoch``: what is known to exist beyond the position is lost, target unknown."""
        pos = self.positions.pop(epoch)
        self.stats["lost_unknown"] += max(0, self.heard.pop(epoch, pos) - pos)
        self.stats["epochs_gone"] += 1
        self.unchecked.discard(epoch)
        self.gone.append(epoch)
        self.changes.stream = self.positions

    def _move(self, epoch, seq):
        self.positions[epoch] = seq
        if seq > self.heard.get(epoch, 0):
            self.heard[epoch] = seq
        self.changes.stream = self.positions

    # -------------------------------------------------------------- replay
    def wanted(self):
        """``(epoch, after)`` of the replay the hub needs next (oldest epoch first), or ``None``."""
        for epoch, pos in self.positions.items():
            if epoch in self.unchecked or self.heard.get(epoch, 0) > pos:
                return epoch, pos
        return None

    def next_request(self):
        """A ``Request`` to send now, or ``None`` (one in flight, nothing wanted, or too soon after a failure)."""
        now = self.clock()
        if self.request is not None:
            if now < self.request.deadline:
                return None
            self.stats["replay_timeouts"] += 1
            self.request = None
        if now < self.next_try:
            return None
        wanted = self.wanted()
        if wanted is None:
            return None
        self.request = Request(self.next_id, wanted[0], wanted[1], now + self.timeout)
        self.next_id += 1
        self.stats["replay_requests"] += 1
        return self.request

    def not_sent(self):
        """The request could not be sent (no notifier connected): try again a little later."""
        self.request = None
        self.next_try = self.clock() + RETRY_SECONDS

    def next_wake(self):
        """When the tracker next needs a loop turn (monotonic seconds), or ``None``."""
        if self.request is not None:
            return self.request.deadline
        if self.wanted() is not None:
            return self.next_try
        return None

    def replied(self, reply, events):
        """A checked replay answer: ``(lost, start)``.

        ``lost`` lists ``(target, to, count)`` that can never be resent, for the
        caller to count to the clients concerned; ``events[start:]`` are to be
        applied now (``start`` is ``None`` when none are). An answer to a
        request no longer in flight is ignored.
        """
        req = self.request
        if req is None or reply.get("id") != req.req_id:
            return [], None
        self.request = None
        self.next_try = 0.0
        epoch = req.epoch
        self.unchecked.discard(epoch)
        if epoch not in self.positions:  # given up while the request was out
            return [], None
        if not reply["known"]:
            self._give_up(epoch)
            self._see(reply["epoch"], reply["head"], 0)  # the notifier's run now: follow it from its start
            return [], None
        if reply["head"] > self.heard.get(epoch, 0):
            self.heard[epoch] = reply["head"]
        pos = start_pos = self.positions[epoch]
        lost = []
        for first, last, target, to in reply["lost"]:
            if last <= pos:
                continue
            if first > pos + 1:
                break
            count = last - pos
            pos = last
            if target is None:
                self.stats["lost_unknown"] += count
            else:
                self.stats["lost"] += count
                lost.append((target, to, count))
        start = None
        if events:
            first = reply["first"]
            last = first + len(events) - 1
            if first <= pos + 1 <= last:
                start = pos + 1 - first
                self.stats["replayed"] += len(events) - start
                pos = last
        if pos != start_pos:
            self._move(epoch, pos)
        return lost, start

    def describe(self):
        """The stream as ``/ws/status`` shows it, and ``/metrics`` counts it."""
        return {
            "epoch": self.current,
            "applied": self.positions.get(self.current, 0) if self.current else 0,
            "behind": sum(max(0, self.heard.get(e, 0) - p) for e, p in self.positions.items()),
            "replaying": self.request is not None,
            **self.stats,
        }
