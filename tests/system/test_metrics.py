"""/metrics (parsed with prometheus_client's own parser) and /ws/health against the real services."""

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.stack import wait_for
from tests.system.operator_support import live_stack, connect, poll


def scrape(stack):
    r = stack.get("/metrics")
    assert r.status == 200, r
    assert r.headers["content-type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(r.raw.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    yield from live_stack(tmp_path_factory, "metrics")


def test_counters_move_as_messages_flow(live):
    before = scrape(live)
    assert value(before, "bridge_hub_up") == 1.0
    client_id, headers = connect(live, "lightroom", ["photos"])
    poll(live, client_id, headers)
    for n in range(5):
        r = live.post("/ws/broadcast", {"channel": "photos", "message": {"type": "photo_imported", "n": n}})
        assert r.status == 200
    assert len(poll(live, client_id, headers)) == 5
    after = scrape(live)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("bridge_messages_in_total", type="photo_imported", channel="photos") == 5
    assert moved("bridge_messages_out_total", type="photo_imported", channel="photos") == 5
    assert moved("bridge_publish_deliver_latency_seconds_count") >= 5
    assert value(after, "bridge_publish_deliver_latency_seconds_bucket", le="+Inf") == \
        value(after, "bridge_publish_deliver_latency_seconds_count")
    assert moved("bridge_hub_request_seconds_count", op="publish") == 5
    assert value(after, "bridge_clients", client_type="lightroom", transport="poll") >= 1
    assert value(after, "bridge_channel_subscribers", channel="photos") >= 1
    assert value(after, "bridge_zmq_errors_total", kind="reply_dropped") == 0
    # the notifier's first status comes within BRIDGE_STATUS_INTERVAL (1 s) of its start, maybe after the above
    wait_for(lambda: value(scrape(live), "bridge_notifier_events_total") >= 1, message="a notifier event counted")
    assert value(after, "bridge_queue_size") == 100


def test_overflow_is_counted_as_dropped_by_type(live):
    client_id, headers = connect(live, "lightroom", ["photos"])
    before = scrape(live)
    for n in range(110):  # queue of 100: the welcome and 10 photos go
        live.post("/ws/broadcast", {"channel": "photos", "message": {"type": "photo_analyzed", "n": n}})
    after = scrape(live)
    dropped = (value(after, "bridge_messages_dropped_total", type="photo_analyzed", channel="photos")
               - value(before, "bridge_messages_dropped_total", type="photo_analyzed", channel="photos"))
    assert dropped >= 10
    assert value(after, "bridge_queue_depth_max", client_type="lightroom") == 100
    assert poll(live, client_id, headers)  # drains it


def test_poll_holds_are_measured(live):
    client_id, headers = connect(live, "lightroom")
    poll(live, client_id, headers)
    before = scrape(live)
    started = time.monotonic()
    assert poll(live, client_id, headers, wait=0.3) == []
    assert time.monotonic() - started >= 0.3
    after = scrape(live)
    assert value(after, "bridge_poll_hold_seconds_count") - value(before, "bridge_poll_hold_seconds_count") >= 1
    assert value(after, "bridge_poll_hold_seconds_sum") - value(before, "bridge_poll_hold_seconds_sum") >= 0.29


def test_health_names_each_part(live):
    wait_for(lambda: live.get("/ws/health").json["status"] == "ok", 15, message="the notifier to be heard")
    r = live.get("/ws/health")
    assert r.status == 200 and r.json["success"] is True
    assert r.json["gateway"]["up"] is True
    assert r.json["hub"]["reachable"] is True and 0 < r.json["hub"]["rtt_ms"] < 2000
    assert r.json["notifier"]["state"] == "ok" and r.json["notifier"]["last_seen_seconds"] < 30
    status = live.get("/ws/status").json["status"]
    assert status["deliver_latency"]["count"] >= 0 and "notifier_last_seen_seconds" in status


def test_health_and_metrics_without_hub_or_notifier(stack_factory):
    stack = stack_factory()  # hub and gateway, no notifier
    r = stack.get("/ws/health")
    assert r.status == 200 and r.json["status"] == "degraded" and r.json["notifier"]["state"] == "never_seen"
    stack.stop("hub")
    r = stack.get("/ws/health")
    assert r.status == 503 and r.json["success"] is False and r.json["status"] == "down"
    assert r.json["hub"]["reachable"] is False
    samples = scrape(stack)
    assert value(samples, "bridge_hub_up") == 0.0
