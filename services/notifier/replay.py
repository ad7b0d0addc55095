"""The notifier's numbered record of this run: what it published, for hubs that missed some.

Every event the notifier accepts gets the next ``seq`` of this run's
``epoch``. Two bounded structures remember it (docs/PROTOCOL.md rules 23-31):

- ``payloads``: the encoded events published to hubs, newest last, at most
  ``size`` events and ``max_bytes`` bytes; a hub that missed some (it
  restarted, joined late, or a pipe overflowed) gets them again from here.
- ``index``: who each seq was for, as runs ``[first, last, target, to]`` of
  consecutive seqs with the same target, at most ``index_size`` runs. It
  reaches much further back than the payloads, so what can no longer be
  resent can still be counted as lost to the clients it was for.

A seq accepted but never published (dropped from the hold while no hub was
subscribed) has an index entry and no payload: it is reported as lost too.
"""

import uuid
from bisect import bisect_left
from collections import deque
from itertools import islice
from operator import itemgetter

from services import protocol

_SEQ = itemgetter(0)
_LAST = itemgetter(1)


def new_epoch():
    """A fresh run id: 16 hex characters."""
    return uuid.uuid4().hex[:16]


class ReplayLog:
    """This notifier run's numbered events: payloads of the newest, targets of many more."""

    def __init__(self, size, max_bytes, index_size, epoch=None):
        self.size = size
        self.max_bytes = max_bytes
        self.index_size = index_size
        self.epoch = epoch or new_epoch()
        self.next_seq = 1  # the seq the next accepted event gets
        self.head = 0  # the highest seq published
        self.payloads = deque()  # (seq, payload bytes), seqs increasing
        self.bytes = 0
        self.index = deque()  # [first, last, target, to]: every seq accepted, oldest runs evicted first
        self.evicted = 0  # payloads evicted for the bounds
        self.replayed = 0  # events sent again to a hub

    def number(self, target, to):
        """The seq of a newly accepted event for ``target``/``to``."""
        seq = self.next_seq
        self.next_seq += 1
        index = self.index
        if index:
            last = index[-1]
            if last[1] == seq - 1 and last[2] == target and last[3] == to:
                last[1] = seq
                return seq
        index.append([seq, seq, target, to])
        if len(index) > self.index_size:
            index.popleft()
        return seq

    def published(self, first, payloads):
        """Events ``first``, ``first + 1``… went out to the hubs: keep them, within the bounds."""
        keep = self.payloads
        for offset, payload in enumerate(payloads):
            keep.append((first + offset, payload))
            self.bytes += len(payload)
        self.head = max(self.head, first + len(payloads) - 1)
        while keep and (len(keep) > self.size or self.bytes > self.max_bytes):
            self.bytes -= len(keep.popleft()[1])
            self.evicted += 1

    def replay(self, after, budget=protocol.BATCH_BYTES, max_events=protocol.MAX_BATCH,
               max_lost=protocol.MAX_LOST_RUNS):
        """What follows seq ``after``, up to ``head``: ``(lost, first, payloads, upto)``.

        ``lost`` are ``[first, last, target, to]`` runs (``None`` target: not
        known any more) for seqs that cannot be resent; then ``payloads``
        are the events ``first``, ``first + 1``… that can (at most ``budget``
        bytes, one event at least); ``upto`` is the last seq the answer
        covers, so the caller asks again after it while ``upto < head``.
        """
        start = after + 1
        if start > self.head:
            return [], None, [], after
        keep = self.payloads
        i = bisect_left(keep, start, key=_SEQ)
        end = keep[i][0] - 1 if i < len(keep) else self.head
        lost = []
        upto = after
        if end >= start:
            lost = self._targets(start, end, max_lost)
            upto = lost[-1][1]
            if upto < end or i >= len(keep):
                return lost, None, [], upto
        first = keep[i][0]
        out, size = [], 0
        for seq, payload in islice(keep, i, None):
            if seq != first + len(out) or len(out) >= max_events or (out and size + len(payload) > budget):
                break
            out.append(payload)
            size += len(payload)
        self.replayed += len(out)
        return lost, first, out, first + len(out) - 1

    def _targets(self, start, end, max_lost):
        """``[first, last, target, to]`` runs covering ``start..end`` (at most ``max_lost`` of them)."""
        index = self.index
        out = []
        known_from = index[0][0] if index else self.next_seq
        if start < known_from:
            out.append([start, min(end, known_from - 1), None, None])
            start = known_from
        i = bisect_left(index, start, key=_LAST)
        while start <= end and i < len(index) and len(out) < max_lost:
            first, last, target, to = index[i]
            out.append([max(first, start), min(last, end), target, to])
            start = min(last, end) + 1
            i += 1
        return out

    def describe(self):
        """The numbers the notifier logs and heartbeats carry."""
        return {"epoch": self.epoch, "head": self.head, "kept": len(self.payloads), "kept_bytes": self.bytes,
                "evicted": self.evicted, "replayed": self.replayed, "index_runs": len(self.index)}
