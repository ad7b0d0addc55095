"""One client's session: its bounded queue, sequence numbers and parked poll."""

from collections import deque


class Parked:
    """A long-poll waiting in the hub: who to answer, and until when."""

    __slots__ = ("peer", "req_id", "deadline", "ack_mode")

    def __init__(self, peer, req_id, deadline, ack_mode):
        self.peer = peer
        self.req_id = req_id
        self.deadline = deadline
        self.ack_mode = ack_mode


class Session:
    """A connected client as the hub sees it.

    The queue holds ``(seq, message)`` pairs; ``message`` dicts may be shared
    between sessions and are never mutated. Sequence numbers start at 1 and
    grow by one per message queued for this client, dropped or not, so a
    client sees a gap exactly where it lost messages.
    """

    __slots__ = (
        "client_id", "client_type", "client_name", "connected_at", "last_seen",
        "last_poll", "subscriptions", "queue", "limit", "next_seq",
        "dropped_total", "dropped_unreported", "parked", "info",
    )

    def __init__(self, client_id, client_type, limit, now, wall_iso):
        self.client_id = client_id
        self.client_type = client_type
        self.client_name = None
        self.connected_at = wall_iso
        self.last_seen = now
        self.last_poll = None
        self.subscriptions = set()
        self.queue = deque()
        self.limit = limit
        self.next_seq = 1
        self.dropped_total = 0
        self.dropped_unreported = 0
        self.parked = None
        self.info = {}

    def enqueue(self, message):
        """Queue ``message``; drops the oldest when full and counts it."""
        if len(self.queue) >= self.limit:
            self.queue.popleft()
            self.dropped_total += 1
            self.dropped_unreported += 1
        self.queue.append((self.next_seq, message))
        self.next_seq += 1

    def ack(self, seq):
        """Forget every queued message up to and including ``seq``."""
        queue = self.queue
        while queue and queue[0][0] <= seq:
            queue.popleft()

    def take(self, batch, keep):
        """The next ``batch`` messages, each with its seq.

        With ``keep`` (the client acknowledges) they stay queued until acked;
        without it they are removed now, as the seed's drain-on-poll did.
        """
        queue = self.queue
        count = min(batch, len(queue))
        out = []
        append = out.append
        if keep:
            for i in range(count):
                seq, message = queue[i]
                msg = dict(message)
                msg["seq"] = seq
                append(msg)
        else:
            popleft = queue.popleft
            for _ in range(count):
                seq, message = popleft()
                msg = dict(message)
                msg["seq"] = seq
                append(msg)
        return out

    def take_dropped(self):
        """How many messages were lost since the last report, resetting the count."""
        dropped, self.dropped_unreported = self.dropped_unreported, 0
        return dropped
