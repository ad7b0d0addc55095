"""The hub's own numbers: message counts by type and channel, latencies, errors.

Plain counters and fixed-bucket histograms owned by the hub's one thread; the
``metrics`` op sends a snapshot and the gateway renders it in the Prometheus
text format (services/gateway/metrics.py). Nothing here knows Prometheus.

Label sets are bounded: past ``MAX_SERIES`` distinct ``(type, channel)``
pairs, new pairs are counted under ``("other", "other")``, so a client that
invents message types cannot grow the hub's memory or a scrape without end.
"""

from bisect import bisect_left

MAX_SERIES = 256

# The key under which older releases kept a queued message's publish time inside the message itself
# (and so in the store): the store's load() removes it from what it reads back.
PUBLISHED_AT = "__bridge_published_at"


class Published(dict):
    """A published message as the hub queues it: the map clients get, plus ``at``, its publish time
    (monotonic seconds) for the delivery latency, ``json``, its JSON text once a poll answer needed it
    (services/hub/sessions.py ``json_entry``: encoded once for all its recipients), and ``packed``, its
    store record once channel history measured it (the store writes those bytes). None is a key: they
    never reach a client or the store as such."""

    __slots__ = ("at", "json", "packed")

# Upper bounds in seconds (+Inf is implied).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
HOLD_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 60.0)
REQUEST_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)


class Histogram:
    """Counts per bucket (not cumulative; the last slot is +Inf), sum and count."""

    __slots__ = ("bounds", "counts", "sum", "count")

    def __init__(self, bounds):
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value):
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def snapshot(self):
        return {"bounds": list(self.bounds), "counts": list(self.counts), "sum": self.sum, "count": self.count}


class HubMetrics:
    """Every number the hub counts for ``/metrics``, the dashboard and ``/ws/health``."""

    def __init__(self, clock):
        self.clock = clock
        self.messages_in = {}  # (type, channel) -> published
        self.messages_out = {}  # (type, channel) -> handed to a client in a poll answer
        self.messages_dropped = {}  # (type, channel) -> pushed out of a full queue
        self.deliver_latency = Histogram(LATENCY_BUCKETS)
        self.poll_hold = Histogram(HOLD_BUCKETS)
        self.requests = {}  # op -> Histogram of handling time in the hub
        self.errors = {}  # kind -> count (rejected frames, replies dropped on a full pipe…)
        self.parked_since = {}  # client_id -> when its current poll was parked
        self.events_received = 0
        self.notifier_seen = None  # monotonic time of the last event or heartbeat from a notifier

    @staticmethod
    def _count(table, key, n=1):
        if key not in table and len(table) >= MAX_SERIES - 1:
            key = ("other", "other")
        table[key] = table.get(key, 0) + n

    def published(self, message, channel):
        """A message entered the hub for ``channel`` ("" when not sent to a channel)."""
        self._count(self.messages_in, (message.get("type", ""), channel))

    def dropped(self, message):
        """A queued message was pushed out by a newer one."""
        self._count(self.messages_dropped, (message.get("type", ""), message.get("channel", "")))

    def delivered(self, entries):
        """``entries`` (queued ``(seq, message)`` pairs, each message ``Published`` or made by the hub) go out
        now: count them, and the latency of those published."""
        now = self.clock()
        out = self.messages_out
        observe = self.deliver_latency.observe
        for _, message in entries:
            key = (message.get("type", ""), message.get("channel", ""))
            if key in out:
                out[key] += 1
            else:
                self._count(out, key)
            if type(message) is Published:
                observe(max(0.0, now - message.at))

    def park(self, client_id):
        """A poll was parked for ``client_id``."""
        self.parked_since[client_id] = self.clock()

    def unpark(self, client_id):
        """That client's parked poll was answered: record how long it was held."""
        since = self.parked_since.pop(client_id, None)
        if since is not None:
            self.poll_hold.observe(max(0.0, self.clock() - since))

    def request(self, op, seconds):
        """The hub spent ``seconds`` handling one ``op`` request."""
        hist = self.requests.get(op)
        if hist is None:
            hist = self.requests[op] = Histogram(REQUEST_BUCKETS)
        hist.observe(seconds)

    def error(self, kind):
        """Count a ZeroMQ-side fault of ``kind``."""
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def event(self, from_notifier=True):
        """An event (or a heartbeat) arrived from a notifier."""
        self.events_received += 1
        if from_notifier:
            self.notifier_seen = self.clock()

    def notifier_age(self):
        """Seconds since a notifier was last heard from, or ``None`` if never."""
        return None if self.notifier_seen is None else round(self.clock() - self.notifier_seen, 3)

    def latency_summary(self):
        """Count and sum of publish→deliver latency (a rate of both gives the mean)."""
        return {"count": self.deliver_latency.count, "sum": round(self.deliver_latency.sum, 6)}

    def snapshot(self, hub):
        """Everything as msgpack-friendly lists and maps."""
        def rows(table):
            return [[t, c, n] for (t, c), n in table.items()]

        clients = {}
        depth = {}
        depth_max = {}
        for session in hub.sessions.values():
            transport = getattr(session, "transport", None) or "poll"
            key = (session.client_type, transport)
            clients[key] = clients.get(key, 0) + 1
            n = len(session.queue)
            depth[session.client_type] = depth.get(session.client_type, 0) + n
            depth_max[session.client_type] = max(depth_max.get(session.client_type, 0), n)
        return {
            "clients": [[t, tr, n] for (t, tr), n in clients.items()],
            "queue_depth": [[t, n, depth_max[t]] for t, n in depth.items()],
            "queue_size": hub.config.queue_size,
            "channels": [[name, len(members)] for name, members in hub.channels.items()],
            "parked_polls": sum(1 for s in hub.sessions.values() if s.parked is not None),
            "messages_in": rows(self.messages_in),
            "messages_out": rows(self.messages_out),
            "messages_dropped": rows(self.messages_dropped),
            "stats": dict(hub.stats),
            "deliver_latency": self.deliver_latency.snapshot(),
            "poll_hold": self.poll_hold.snapshot(),
            "requests": {op: hist.snapshot() for op, hist in self.requests.items()},
            "errors": dict(self.errors),
            "events_received": self.events_received,
            "notifier_age": self.notifier_age(),
            "uptime_seconds": round(hub.clock() - hub.started, 3),
            "stream": hub.stream.describe() if getattr(hub, "stream", None) is not None else None,
            "history": hub.history.describe(),
        }
