"""GET /metrics: the hub's numbers in the Prometheus text format.

Every counter lives in the hub (one process, the single owner of state); the
gateway asks for a snapshot with the ``metrics`` op and renders it through a
throw-away ``CollectorRegistry``. The gateway keeps no counters of its own:
with several gunicorn workers each would hold a different part, and
prometheus_client's multiprocess mode would need a shared folder on disk.
What the gateway adds is measured at scrape time: whether the hub answered
(``bridge_hub_up``) and how long it took (``bridge_hub_rtt_seconds``).
"""

import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from services import protocol
from services.gateway.hub_client import HubError, HubUnavailable

ERROR_KINDS = ("reply_dropped", "bad_request_frame", "bad_event_frame")
MAX_CHANNELS = 256  # channel gauges exported (the busiest first)


def _histogram(name, doc, snap, labels=(), label_values=()):
    family = HistogramMetricFamily(name, doc, labels=list(labels))
    _add_histogram(family, snap, label_values)
    return family


def _add_histogram(family, snap, label_values=()):
    running = 0
    buckets = []
    for bound, count in zip(snap["bounds"], snap["counts"]):
        running += count
        buckets.append((repr(float(bound)), running))
    buckets.append(("+Inf", snap["count"]))
    family.add_metric(list(label_values), buckets, sum_value=snap["sum"])


def _counter_rows(name, doc, rows):
    family = CounterMetricFamily(name, doc, labels=["type", "channel"])
    for message_type, channel, count in rows:
        family.add_metric([message_type, channel], count)
    return family


def families(snap, hub_rtt):
    """Prometheus metric families from a hub snapshot (``None`` when the hub did not answer)."""
    up = GaugeMetricFamily("bridge_hub_up", "1 when the hub answered this scrape")
    up.add_metric([], 0 if snap is None else 1)
    yield up
    if snap is None:
        return
    rtt = GaugeMetricFamily("bridge_hub_rtt_seconds", "round trip of this scrape's request to the hub")
    rtt.add_metric([], hub_rtt)
    yield rtt

    clients = GaugeMetricFamily("bridge_clients", "connected clients", labels=["client_type", "transport"])
    for client_type, transport, count in snap["clients"]:
        clients.add_metric([client_type, transport], count)
    yield clients
    depth = GaugeMetricFamily("bridge_queue_depth", "messages waiting in client queues", labels=["client_type"])
    deepest = GaugeMetricFamily("bridge_queue_depth_max", "the fullest client queue", labels=["client_type"])
    for client_type, total, most in snap["queue_depth"]:
        depth.add_metric([client_type], total)
        deepest.add_metric([client_type], most)
    yield depth
    yield deepest
    limit = GaugeMetricFamily("bridge_queue_size", "messages kept per client (BRIDGE_QUEUE_SIZE)")
    limit.add_metric([], snap["queue_size"])
    yield limit
    channels = GaugeMetricFamily("bridge_channel_subscribers", "subscribers per channel", labels=["channel"])
    for name, count in sorted(snap["channels"], key=lambda row: -row[1])[:MAX_CHANNELS]:
        channels.add_metric([name], count)
    yield channels
    parked = GaugeMetricFamily("bridge_parked_polls", "long-polls waiting in the hub now")
    parked.add_metric([], snap["parked_polls"])
    yield parked

    yield _counter_rows("bridge_messages_in", "messages published to the hub", snap["messages_in"])
    yield _counter_rows("bridge_messages_out", "messages handed to clients", snap["messages_out"])
    yield _counter_rows("bridge_messages_dropped", "messages lost to a full client queue", snap["messages_dropped"])
    stats = snap["stats"]
    for key, doc in (
        ("undeliverable", "published messages that had no recipient"),
        ("client_messages", "application messages clients sent to backends"),
    ):
        family = CounterMetricFamily(f"bridge_{key}", doc)
        family.add_metric([], stats.get(key, 0))
        yield family

    yield _histogram("bridge_publish_deliver_latency_seconds",
                     "from a message entering the hub to its hand-over to a client", snap["deliver_latency"])
    yield _histogram("bridge_poll_hold_seconds", "how long parked polls were held", snap["poll_hold"])
    requests = HistogramMetricFamily("bridge_hub_request_seconds", "hub time spent per request", labels=["op"])
    for op, hist in sorted(snap["requests"].items()):
        _add_histogram(requests, hist, [op])
    yield requests

    errors = CounterMetricFamily("bridge_zmq_errors", "ZeroMQ-side faults seen by the hub", labels=["kind"])
    counts = dict.fromkeys(ERROR_KINDS, 0)
    counts.update(snap["errors"])
    for kind, count in sorted(counts.items()):
        errors.add_metric([kind], count)
    yield errors
    events = CounterMetricFamily("bridge_notifier_events", "events and heartbeats received from notifiers")
    events.add_metric([], snap["events_received"])
    yield events
    if snap["notifier_age"] is not None:
        age = GaugeMetricFamily("bridge_notifier_last_seen_seconds", "seconds since a notifier was last heard")
        age.add_metric([], snap["notifier_age"])
        yield age
    yield from _stream_families(snap.get("stream"))
    history = snap.get("history")
    if history is not None:  # docs/DURABILITY.md: channel history and its byte budget
        for name, doc, kind, value in (
            ("bridge_history_bytes", "bytes of channel history kept", GaugeMetricFamily, history["bytes"]),
            ("bridge_history_max_bytes", "BRIDGE_HISTORY_MAX_BYTES", GaugeMetricFamily, history["max_bytes"]),
            ("bridge_history_messages", "channel history messages kept", GaugeMetricFamily, history["messages"]),
            ("bridge_history_evicted", "history messages evicted by the byte budget", CounterMetricFamily,
             history["evicted"]),
            ("bridge_history_evicted_bytes", "bytes of history evicted by the byte budget", CounterMetricFamily,
             history["evicted_bytes"]),
        ):
            family = kind(name, doc)
            family.add_metric([], value)
            yield family
    uptime = GaugeMetricFamily("bridge_hub_uptime_seconds", "seconds since the hub started")
    uptime.add_metric([], snap["uptime_seconds"])
    yield uptime


STREAM_COUNTERS = (
    ("gaps", "gaps the hub found in the notifier's numbered stream"),
    ("replay_requests", "replay requests the hub sent to the notifier"),
    ("replay_timeouts", "replay requests the notifier did not answer in time"),
    ("replayed", "events the hub applied from a replay"),
    ("duplicates", "events the hub received again and ignored (seq already applied)"),
)


def _stream_families(stream):
    """The notifier-to-hub stream (docs/DURABILITY.md): replays, and events lost on the way, counted or not."""
    if not stream:
        return
    for key, doc in STREAM_COUNTERS:
        family = CounterMetricFamily(f"bridge_stream_{key}", doc)
        family.add_metric([], stream.get(key, 0))
        yield family
    lost = CounterMetricFamily("bridge_stream_lost", "events the notifier accepted that never reached the hub",
                               labels=["attributed"])
    lost.add_metric(["yes"], stream.get("lost", 0))  # counted in each concerned client's dropped
    lost.add_metric(["no"], stream.get("lost_unknown", 0))  # the target was unknown: no client was told
    yield lost
    behind = GaugeMetricFamily("bridge_stream_behind", "events known to exist that the hub has not applied yet")
    behind.add_metric([], stream.get("behind", 0))
    yield behind


class _Snapshot:
    """A collector that yields the families of one snapshot."""

    def __init__(self, snap, rtt):
        self.snap = snap
        self.rtt = rtt

    def collect(self):
        return families(self.snap, self.rtt)


def render(snap, rtt=0.0):
    """The Prometheus text exposition of a snapshot (bytes)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(snap, rtt))
    return generate_latest(registry)


class Metrics:
    """GET /metrics: Prometheus text; 200 with ``bridge_hub_up 0`` when the hub is away."""

    def __init__(self, hub, config):
        self.hub = hub
        self.config = config

    async def on_get(self, req, resp):
        started = time.perf_counter()
        try:
            reply = await self.hub.request(protocol.OP_METRICS)
            snap = reply["metrics"]
        except (HubUnavailable, HubError):
            snap = None
        resp.content_type = CONTENT_TYPE_LATEST
        resp.data = render(snap, time.perf_counter() - started)
