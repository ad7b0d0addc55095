"""Events waiting for a hub: a bounded, ordered hold with an age limit.

The notifier publishes on an XPUB, which would drop an event sent while no
hub is subscribed (at start-up, or while a hub restarts). Events wait here
instead until a subscription arrives; the oldest go first when the hold is
full, and an event older than ``max_age`` is dropped rather than delivered
late. Every drop is counted.
"""

import collections
import itertools
import time

from services import protocol


class Outbox:
    """A FIFO of encoded events with a size bound and an age bound."""

    def __init__(self, limit, max_age, clock=time.monotonic):
        self.limit = limit
        self.max_age = max_age
        self.clock = clock
        self.items = collections.deque()  # (enqueued_at, frames)
        self.overflowed = 0  # dropped because the hold was full
        self.expired = 0  # dropped because they waited longer than max_age

    def __len__(self):
        return len(self.items)

    def put(self, frames):
        """Hold ``frames``; when full, the oldest held event is dropped to make room."""
        if self.limit <= 0:
            self.overflowed += 1
            return
        if len(self.items) >= self.limit:
            self.items.popleft()
            self.overflowed += 1
        self.items.append((self.clock(), frames))

    def expire(self):
        """Drop events older than ``max_age``; returns how many went."""
        cutoff = self.clock() - self.max_age
        items = self.items
        count = 0
        while items and items[0][0] < cutoff:
            items.popleft()
            count += 1
        self.expired += count
        return count

    def drain_runs(self, send):
        """Pass held events, oldest first, in runs (``protocol.batches`` of their payload frames):
        ``send(list_of_frames)`` until it returns False.

        Returns how many events were sent; a refused run stays held.
        """
        items = self.items
        sent = 0
        while items:
            # Only the front run is read: a hub that is behind costs one run per retry, not the whole hold.
            front = (frames for _, frames in itertools.islice(items, protocol.MAX_BATCH))
            run = next(protocol.batches(front, size_of=_payload_size))
            if not send(run):
                break
            for _ in run:
                items.popleft()
            sent += len(run)
        return sent


def _payload_size(frames):
    return len(frames[-1])
