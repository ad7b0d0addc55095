"""Channel history: the last messages of each channel, with offsets and an epoch.

Every message published to a channel gets the channel's next ``offset``
(1, 2, 3… within one epoch) and its ``epoch``, an id minted when the
channel's history starts. A client that remembers the last ``(offset,
epoch)`` it saw can come back and have what it missed replayed; if the
history it needs is gone (too old, too many messages, or a new epoch because
the store was lost) it is told so, never left to guess.

The hub's one thread owns this; the store reads ``changes`` at each commit.
"""

import secrets
from collections import deque


def new_epoch():
    """A fresh epoch id: random, so a deleted store can never repeat one."""
    return secrets.token_hex(8)


class Channel:
    """One channel's history: ``entries`` holds ``(offset, wall_seconds, message)``."""

    __slots__ = ("name", "epoch", "next_offset", "entries", "last_used")

    def __init__(self, name, epoch, next_offset=1, last_used=0.0):
        self.name = name
        self.epoch = epoch
        self.next_offset = next_offset
        self.entries = deque()
        self.last_used = last_used

    @property
    def last_offset(self):
        """The offset of the newest message ever published here (0: none yet)."""
        return self.next_offset - 1

    @property
    def first_kept(self):
        """The oldest offset still replayable (``next_offset`` when none is kept)."""
        return self.entries[0][0] if self.entries else self.next_offset

    def position(self):
        """What a client should remember to recover from here later."""
        return {"offset": self.last_offset, "epoch": self.epoch}


class Changes:
    """What changed since the last commit, for the store."""

    __slots__ = ("meta", "added", "trimmed", "removed")

    def __init__(self):
        self.meta = set()  # channel names whose epoch/next_offset changed
        self.added = []  # (channel, offset, wall_seconds, message)
        self.trimmed = {}  # channel -> oldest offset still kept
        self.removed = set()  # channels forgotten entirely

    def __bool__(self):
        return bool(self.meta or self.added or self.trimmed or self.removed)


class History:
    """Every channel's recent messages, bounded in count, age and number of channels."""

    def __init__(self, size, seconds, max_channels, wallclock, mint_epoch=new_epoch):
        self.size = size
        self.seconds = seconds
        self.max_channels = max_channels
        self.wallclock = wallclock
        self.mint_epoch = mint_epoch
        self.channels = {}  # name -> Channel
        self.changes = Changes()

    def channel(self, name):
        """The channel's history, started (with a new epoch) if there is none."""
        ch = self.channels.get(name)
        if ch is None:
            if len(self.channels) >= self.max_channels:
                self._evict_one()
            ch = self.channels[name] = Channel(name, self.mint_epoch(), 1, self.wallclock())
            self.changes.meta.add(name)  # a name in changes.removed stays there: old rows go first
        return ch

    def record(self, name, message):
        """Stamp a fresh (not yet shared) channel message with offset and epoch, and keep it."""
        ch = self.channel(name)
        now = self.wallclock()
        offset = ch.next_offset
        ch.next_offset = offset + 1
        ch.last_used = now
        message["offset"] = offset
        message["epoch"] = ch.epoch
        entries = ch.entries
        entries.append((offset, now, message))
        changes = self.changes
        changes.meta.add(name)
        changes.added.append((name, offset, now, message))
        if len(entries) > self.size:
            entries.popleft()
            changes.trimmed[name] = ch.first_kept

    def since(self, name, offset, epoch, budget):
        """What a client that last saw ``(offset, epoch)`` missed.

        Returns ``(messages, report)``: at most ``budget`` messages to replay,
        the newest ones, and the report the subscribe reply carries for this
        channel: ``recovered`` (nothing is missing), ``replayed``, ``lost``
        (how many are gone, or ``None`` when unknown because the epoch
        changed) and the channel's current ``offset``/``epoch``.
        """
        ch = self.channel(name)
        known = epoch == ch.epoch and 0 <= offset <= ch.last_offset
        if known:
            missed = [e[2] for e in ch.entries if e[0] > offset]
            lost = max(0, ch.first_kept - offset - 1)
        else:
            missed = [e[2] for e in ch.entries]
            lost = None
        if len(missed) > budget:
            cut = len(missed) - budget
            missed = missed[cut:]
            lost = None if lost is None else lost + cut
        report = {
            "recovered": known and lost == 0,
            "replayed": len(missed),
            "lost": lost,
            "epoch_changed": not known,
            "offset": ch.last_offset,
            "epoch": ch.epoch,
        }
        return missed, report

    def prune(self):
        """Forget messages older than the time limit (run from the stale sweep)."""
        cutoff = self.wallclock() - self.seconds
        for ch in self.channels.values():
            entries = ch.entries
            if entries and entries[0][1] < cutoff:
                while entries and entries[0][1] < cutoff:
                    entries.popleft()
                self.changes.trimmed[ch.name] = ch.first_kept

    def _evict_one(self):
        # The channel used least recently goes; its clients will see a new epoch.
        victim = min(self.channels.values(), key=lambda c: c.last_used)
        del self.channels[victim.name]
        self.changes.meta.discard(victim.name)
        self.changes.trimmed.pop(victim.name, None)
        self.changes.added = [a for a in self.changes.added if a[0] != victim.name]
        self.changes.removed.add(victim.name)

    def load(self, name, epoch, next_offset, last_used, entries):
        """Restore one channel from the store (``entries`` oldest first)."""
        ch = Channel(name, epoch, next_offset, last_used)
        ch.entries.extend(entries)
        self.channels[name] = ch

    def count(self):
        """How many messages are kept in all."""
        return sum(len(ch.entries) for ch in self.channels.values())
