"""Channel history: the last messages of each channel, with offsets and an epoch.

Every message published to a channel gets the channel's next ``offset``
(1, 2, 3… within one epoch) and its ``epoch``, an id minted when the
channel's history starts. A client that remembers the last ``(offset,
epoch)`` it saw can come back and have what it missed replayed; if the
history it needs is gone (too old, too many messages, pushed out by the
global byte budget, or a new epoch because the store was lost) it is told
so, never left to guess.

Besides each channel's own bounds, every channel's history together stays
within ``max_bytes`` (a message's size is its encoded size): past it the
oldest messages go first, whatever their channel, and are counted in
``evicted``.

The hub's one thread owns this; it records what changed in the loop's change
set (``changes``, services/hub/changes.py), which the store writes.
"""

import secrets
from collections import deque

from services import protocol
from services.hub.changes import HistoryChanges
from services.hub.metrics import Published


def size_of(message):
    """What a kept message counts against the byte budget: its encoded size. A published one keeps that
    encoding (``packed``): the store writes the same bytes."""
    packed = protocol.encode_record(message)
    if type(message) is Published:
        message.packed = packed
    return len(packed)


def new_epoch():
    """A fresh epoch id: random, so a deleted store can never repeat one."""
    return secrets.token_hex(8)


class Channel:
    """One channel's history: ``entries`` holds ``(offset, wall_seconds, message, size)``."""

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


class History:
    """Every channel's recent messages, bounded in count, age, number of channels and bytes in all."""

    def __init__(self, size, seconds, max_channels, wallclock, mint_epoch=new_epoch, max_bytes=256 * 2**20,
                 changes=None):
        self.size = size
        self.seconds = seconds
        self.max_channels = max_channels
        self.max_bytes = max_bytes
        self.wallclock = wallclock
        self.mint_epoch = mint_epoch
        self.channels = {}  # name -> Channel
        self.changes = HistoryChanges() if changes is None else changes  # the loop's, for the store
        self.changes.budget = max_bytes
        self.bytes = 0  # the sizes of every kept message
        self.kept = 0  # how many messages are kept
        self.evicted = 0  # messages pushed out by the byte budget (counted, never reset)
        self.evicted_bytes = 0
        self.freed_bytes = 0  # the sizes of every message forgotten, by any bound
        # (channel, offset) of every kept message, oldest first, for the byte budget; entries that left
        # their channel by another bound are skipped when met, and swept once they outnumber the kept ones.
        self.order = deque()

    def channel(self, name):
        """The channel's history, started (with a new epoch) if there is none."""
        ch = self.channels.get(name)
        if ch is None:
            if len(self.channels) >= self.max_channels:
                self._evict_one()
            ch = self.channels[name] = Channel(name, self.mint_epoch(), 1, self.wallclock())
            self.changes.meta[name] = ch  # a name in changes.removed stays there: old rows go first
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
        size = size_of(message)
        entries = ch.entries
        entries.append((offset, now, message, size))
        self.bytes += size
        self.kept += 1
        self.order.append((ch, offset))
        changes = self.changes
        changes.meta[name] = ch
        changes.added.append((name, offset, now, message))
        if len(entries) > self.size:
            self._drop_oldest(ch)
            changes.trimmed[name] = ch.first_kept
        if self.bytes > self.max_bytes:
            self._fit_budget()
        elif len(self.order) > 2 * self.kept + 64:
            self._sweep_order()

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
                    self._drop_oldest(ch)
                self.changes.trimmed[ch.name] = ch.first_kept
        self._sweep_order()

    def describe(self):
        """The history as ``/ws/status`` shows it."""
        return {"channels": len(self.channels), "messages": self.kept, "bytes": self.bytes,
                "max_bytes": self.max_bytes, "evicted": self.evicted, "evicted_bytes": self.evicted_bytes}

    def _drop_oldest(self, ch):
        size = ch.entries.popleft()[3]
        self.bytes -= size
        self.kept -= 1
        self.freed_bytes += size
        self.changes.freed += size
        return size

    def _fit_budget(self):
        # Oldest first across every channel, until the kept messages fit (the newest may go too).
        order, trimmed = self.order, self.changes.trimmed
        while self.bytes > self.max_bytes and order:
            ch, offset = order.popleft()
            entries = ch.entries
            if not entries or entries[0][0] != offset or self.channels.get(ch.name) is not ch:
                continue  # already gone by the channel's own bounds
            self.evicted_bytes += self._drop_oldest(ch)
            self.evicted += 1
            trimmed[ch.name] = ch.first_kept
        self._sweep_order()

    def _sweep_order(self):
        order = self.order
        if len(order) > 2 * self.kept + 64:
            # Entries left behind by a channel's own bounds are oldest first in the common case (one busy
            # channel trimming its tail): drop those at the front; sort only if that was not enough.
            channels = self.channels
            while order:
                ch, offset = order[0]
                entries = ch.entries
                if entries and entries[0][0] <= offset and channels.get(ch.name) is ch:
                    break
                order.popleft()
            if len(order) > 2 * self.kept + 64:
                self._order_by_age()

    def _order_by_age(self):
        # (wall time, channel, offset) is unique: the sort never compares two channels.
        live = sorted((e[1], ch.name, e[0], ch) for ch in self.channels.values() for e in ch.entries)
        self.order = deque((ch, offset) for _, _, offset, ch in live)

    def _evict_one(self):
        # The channel used least recently goes; its clients will see a new epoch.
        victim = min(self.channels.values(), key=lambda c: c.last_used)
        del self.channels[victim.name]
        freed = sum(e[3] for e in victim.entries)
        self.bytes -= freed
        self.freed_bytes += freed
        self.changes.freed += freed
        self.kept -= len(victim.entries)
        victim.entries.clear()
        self.changes.meta.pop(victim.name, None)
        self.changes.trimmed.pop(victim.name, None)
        self.changes.added = [a for a in self.changes.added if a[0] != victim.name]
        self.changes.removed.add(victim.name)

    def load(self, name, epoch, next_offset, last_used, entries):
        """Restore one channel from the store (``entries``: ``(offset, wall_seconds, message)``, oldest first)."""
        ch = Channel(name, epoch, next_offset, last_used)
        for offset, ts, message in entries:
            size = size_of(message)
            ch.entries.append((offset, ts, message, size))
            self.bytes += size
            self.kept += 1
        self.channels[name] = ch

    def loaded(self):
        """After every ``load()``: put the messages in age order for the budget, and fit them in it."""
        self._order_by_age()
        if self.bytes > self.max_bytes:
            self._fit_budget()

    def count(self):
        """How many messages are kept in all."""
        return self.kept
