"""A client's message queue, indexed for conflation so a full queue makes room in O(1).

``MessageQueue`` holds ``(seq, message)`` pairs, oldest first, and reads like
the ``deque`` it replaces (``len``, iteration, ``[0]``, ``[-1]``, ``append``,
``popleft``). Beside the entries it keeps an index of the *keyed* ones (those
with a conflation key, services/hub/conflation.py): for each key its seqs in
order, and every keyed seq in order, split at a mark (the session's ``sent``:
at or below it an entry is in flight and never conflated). So both rules that
make room find what to remove without looking at any other entry.

Entries removed from the middle are not searched for either: their seqs are
noted as dead and skipped, and the index keeps stale seqs that are skipped
when met. Both ends of the entries are always live, so ``[0]`` and ``[-1]``
are exact. Once more entries were removed this way than the queue holds, it
is rebuilt without them: every removal costs O(1) amortised, whatever the
queue holds, and memory stays within a small multiple of the live entries.
"""

from bisect import bisect_left, bisect_right
from collections import deque
from itertools import islice
from operator import itemgetter

from services.hub import conflation
from services.hub.conflation import UNKNOWN

_SEQ = itemgetter(0)
# Most queues never hold a keyed entry nor lose one from the middle: they share these empty stand-ins
# (a deque costs 760 bytes, a set 216) and get their own on first use; with thousands of clients that
# is about a third of a session's memory (docs/PERFORMANCE.md).
_NO_SEQS = ()
_NO_DEAD = frozenset()


class MessageQueue:
    """``(seq, message)`` pairs in seq order, with O(1) removal of keyed entries.

    Entries removed from the middle stay in ``_entries`` (marked in
    ``_dead``) until a rebuild, but its first and last entries are always
    live: the session's and the store's hot paths (a fan-out passes every
    subscriber through them) read the two ends of ``_entries`` directly.
    """

    __slots__ = ("_entries", "_dead", "_keyed", "_by_key", "_held", "_open", "_mark", "_removed")

    def __init__(self):
        self._entries = deque()  # (seq, message), seqs ascending; both ends live
        self._dead = _NO_DEAD  # seqs removed from the middle, still in _entries (a set once there are any)
        self._keyed = {}  # seq -> (key, message) of every live keyed entry
        self._by_key = {}  # key -> deque of seqs ascending (stale ones possible)
        self._held = _NO_SEQS  # keyed seqs <= _mark, ascending (stale ones possible); both deques once
        self._open = _NO_SEQS  # keyed seqs > _mark, ascending (stale ones possible); a keyed entry came
        self._mark = 0
        self._removed = 0  # entries removed from the middle since the last rebuild

    # ------------------------------------------------------------ deque-like
    def __len__(self):
        return len(self._entries) - len(self._dead)

    def __bool__(self):
        return bool(self._entries)

    def __iter__(self):
        if not self._dead:
            return iter(self._entries)
        dead = self._dead
        return (entry for entry in self._entries if entry[0] not in dead)

    def __reversed__(self):
        if not self._dead:
            return reversed(self._entries)
        dead = self._dead
        return (entry for entry in reversed(self._entries) if entry[0] not in dead)

    def __getitem__(self, index):
        if self._dead and index not in (0, -1):
            self._rebuild()
        return self._entries[index]

    def __repr__(self):
        return f"MessageQueue({list(self)!r})"

    def append(self, entry, key=UNKNOWN):
        """Queue ``entry`` (its seq above every queued one); ``key`` saves computing its conflation key."""
        self._entries.append(entry)
        if key is UNKNOWN:
            key = conflation.key(entry[1])
        if key is not None:
            seq = entry[0]
            self._keyed[seq] = (key, entry[1])
            seqs = self._by_key.get(key)
            if seqs is None:
                seqs = self._by_key[key] = deque()
            seqs.append(seq)
            if self._open is _NO_SEQS:
                self._held, self._open = deque(), deque()
            (self._open if seq > self._mark else self._held).append(seq)

    def popleft(self):
        """Take the oldest entry out."""
        entries = self._entries
        entry = entries.popleft()
        seq = entry[0]
        found = self._keyed.pop(seq, None)
        if found is not None:
            self._forget_up_to(found[0], seq)
        dead = self._dead
        while dead and entries and entries[0][0] in dead:
            dead.discard(entries.popleft()[0])
        return entry

    def clear(self):
        """Empty the queue."""
        self.__init__()

    def after(self, seq):
        """The entries with a seq above ``seq``, oldest first (walks only those, from the newest)."""
        out = []
        for entry in reversed(self):
            if entry[0] <= seq:
                break
            out.append(entry)
        out.reverse()
        return out

    def since(self, seq, count):
        """Up to ``count`` entries with a seq above ``seq``, oldest first.

        Seqs have gaps where entries were removed, so where ``seq`` stands is
        found by a binary search, never by arithmetic on seqs.
        """
        entries = self._entries
        if count <= 0 or not entries or entries[-1][0] <= seq:
            return []
        first = 0 if entries[0][0] > seq else bisect_right(entries, seq, key=_SEQ)
        dead = self._dead
        out = []
        for entry in islice(entries, first, None):
            if dead and entry[0] in dead:
                continue
            out.append(entry)
            if len(out) >= count:
                break
        return out

    # ---------------------------------------------------------- conflation
    def has_keyed(self):
        """True when some queued entry has a conflation key (in flight or not)."""
        return bool(self._keyed)

    def take_key(self, key, above):
        """Remove every entry with conflation ``key`` and a seq above ``above``; returns them."""
        seqs = self._by_key.get(key)
        removed = []
        while seqs and seqs[-1] > above:
            seq = seqs.pop()
            found = self._keyed.get(seq)
            if found is not None:
                removed.append((seq, found[1]))
                self._remove(seq)
        if seqs is not None and not seqs:
            del self._by_key[key]
        if removed:
            self._settle()
        removed.reverse()
        return removed

    def take_oldest_keyed(self, above):
        """Remove the oldest entry that has a conflation key and a seq above ``above``; returns it or None."""
        self._move_mark(above)
        candidates, keyed = self._open, self._keyed
        while candidates:
            seq = candidates.popleft()
            found = keyed.get(seq)
            if found is not None:
                self._remove(seq)
                self._settle()
                return seq, found[1]
        return None

    def discard(self, seq):
        """Take the entry ``seq`` out wherever it is, keyed or not; True when it was queued.

        For a command whose deadline passed before it was handed out
        (services/hub/commands.py): O(log n) to find, O(1) amortised to remove.
        """
        entries = self._entries
        if not entries or seq in self._dead:
            return False
        index = bisect_left(entries, seq, key=_SEQ)
        if index >= len(entries) or entries[index][0] != seq:
            return False
        self._keyed.setdefault(seq, (None, None))  # _remove forgets its index entry; an unkeyed one has none
        self._remove(seq)
        self._settle()
        return True

    # ----------------------------------------------------------- internals
    def _remove(self, seq):
        del self._keyed[seq]
        entries, dead = self._entries, self._dead
        if entries[-1][0] == seq:
            entries.pop()
            while dead and entries and entries[-1][0] in dead:
                dead.discard(entries.pop()[0])
        elif entries[0][0] == seq:
            entries.popleft()
            while dead and entries and entries[0][0] in dead:
                dead.discard(entries.popleft()[0])
        else:
            if dead is _NO_DEAD:
                dead = self._dead = set()
            dead.add(seq)
        self._removed += 1

    def _settle(self):
        # Sweep once more entries went from the middle than the queue holds: O(1) amortised per removal.
        if self._removed > len(self) + 32:
            self._rebuild()

    def _forget_up_to(self, key, seq):
        # The oldest entry (seq, with ``key``) left: index seqs up to it are gone (it, or stale ones).
        seqs = self._by_key.get(key)
        while seqs and seqs[0] <= seq:
            seqs.popleft()
        if seqs is not None and not seqs:
            del self._by_key[key]
        for side in (self._held, self._open):
            while side and side[0] <= seq:
                side.popleft()

    def _move_mark(self, mark):
        # Keyed seqs cross the mark as ``sent`` moves: each crossing is paid for by the delivery that moved it.
        held, candidates, keyed = self._held, self._open, self._keyed
        if candidates is _NO_SEQS:  # nothing keyed was ever queued: nothing to move
            self._mark = mark
            return
        if mark > self._mark:
            while candidates and candidates[0] <= mark:
                seq = candidates.popleft()
                if seq in keyed:
                    held.append(seq)
        elif mark < self._mark:
            while held and held[-1] > mark:
                seq = held.pop()
                if seq in keyed:
                    candidates.appendleft(seq)
        self._mark = mark

    def _rebuild(self):
        # Drop dead entries and stale index seqs: O(live), after more than len(self) removals.
        dead = self._dead
        if dead:
            self._entries = deque(entry for entry in self._entries if entry[0] not in dead)
            dead.clear()
        by_key, held, candidates, mark = {}, deque(), deque(), self._mark
        keyed = self._keyed
        for seq, _ in self._entries:
            found = keyed.get(seq)
            if found is None:
                continue
            key = found[0]
            seqs = by_key.get(key)
            if seqs is None:
                seqs = by_key[key] = deque()
            seqs.append(seq)
            (candidates if seq > mark else held).append(seq)
        self._by_key, self._held, self._open = by_key, held, candidates
        self._removed = 0
