"""Channel history has one byte budget for every channel together (issue 13, point 7), on the real hub.

Thousands of large broadcasts over many channels with no subscriber used to
grow the hub and its store by the product of the per-channel bounds (about
256 GB). With ``BRIDGE_HISTORY_MAX_BYTES`` the hub's memory and its store
file stay near the budget, the oldest messages go first whatever their
channel, ``/ws/status`` and ``/metrics`` count what went, and a client
recovering a position that was evicted is told how many it lost.
"""

import os
import time

import psutil

from tests.system.durable_support import Publisher

BUDGET = 4 * 2**20
CHANNELS = 60
SIZE = 200_000  # bytes of text per message
COUNT = 480  # about 96 MB in all: 24 times the budget


def _publish(stack, messages, window=16):
    pub = Publisher(stack.env["BRIDGE_HUB_RPC"], window=window)
    try:
        for key, (channel, message) in enumerate(messages):
            assert pub.send(key, message, channel)
        assert pub.drain(time.monotonic() + 60)
        return len(pub.acked)
    finally:
        pub.close()


def _store_bytes(stack):
    path = stack.env["BRIDGE_STORE"]
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


def _history(stack):
    r = stack.get("/ws/status")
    assert r.status == 200, r
    return r.json["status"]["history"]


def test_many_channels_of_large_messages_stay_within_the_byte_budget(stack_factory):
    stack = stack_factory({"BRIDGE_HISTORY_MAX_BYTES": str(BUDGET)})
    hub = psutil.Process(stack.procs["hub"].pid)
    cid = stack.handshake("lightroom")
    r = stack.post("/ws/send", {"client_id": cid, "message": {"type": "subscribe", "channels": ["ch0"]}})
    first = r.json["response"]["positions"]["ch0"]  # where ch0 stood before anything was published
    assert stack.post("/ws/disconnect", {"client_id": cid}).status == 200  # no subscriber from here on

    def batch(start, count):
        return [(f"ch{n % CHANNELS}", {"type": "photo_preview", "n": n, "data": "x" * SIZE})
                for n in range(start, start + count)]

    assert _publish(stack, batch(0, COUNT // 4)) == COUNT // 4  # a budget's worth and more: the steady state
    settled_rss, settled_store = hub.memory_info().rss, _store_bytes(stack)
    peak_rss, peak_store = settled_rss, settled_store
    for start in range(COUNT // 4, COUNT, COUNT // 8):
        assert _publish(stack, batch(start, COUNT // 8)) == COUNT // 8
        peak_rss = max(peak_rss, hub.memory_info().rss)
        peak_store = max(peak_store, _store_bytes(stack))
        history = _history(stack)
        assert history["bytes"] <= BUDGET and history["max_bytes"] == BUDGET

    history = _history(stack)
    kept = history["messages"]
    assert 0 < kept <= BUDGET // SIZE
    assert history["evicted"] == COUNT - kept  # each channel keeps 1000: only the budget evicted here
    assert history["evicted_bytes"] >= history["evicted"] * SIZE
    # ~96 MB went through; the hub and its file grew by no more than a few budgets while they did.
    assert peak_rss - settled_rss < 16 * BUDGET, (settled_rss, peak_rss)
    assert peak_store < 12 * BUDGET, (settled_store, peak_store)
    print(f"hub RSS {settled_rss / 2**20:.1f} -> peak {peak_rss / 2**20:.1f} MiB; store {settled_store / 2**20:.1f} "
          f"-> peak {peak_store / 2**20:.1f} MiB; history {history}")

    metrics = dict(line.rsplit(" ", 1) for line in stack.get("/metrics").raw.decode().splitlines()
                   if line.startswith("bridge_history"))
    assert float(metrics["bridge_history_evicted_total"]) == COUNT - kept
    assert float(metrics["bridge_history_max_bytes"]) == BUDGET
    assert float(metrics["bridge_history_bytes"]) <= BUDGET

    # A client that stood at ch0's start comes back: what the budget evicted is reported lost.
    back = stack.handshake("lightroom")
    r = stack.post("/ws/send", {"client_id": back, "message": {
        "type": "subscribe", "channels": ["ch0"], "recover": {"ch0": first}}})
    report = r.json["response"]["recovery"]["ch0"]
    published_to_ch0 = COUNT // CHANNELS
    assert report["epoch_changed"] is False and report["recovered"] is False
    assert report["offset"] == published_to_ch0
    assert report["lost"] + report["replayed"] == published_to_ch0
    assert report["lost"] >= published_to_ch0 - BUDGET // SIZE


def test_the_budget_holds_across_a_restart_with_a_smaller_one(stack_factory):
    stack = stack_factory({"BRIDGE_HISTORY_MAX_BYTES": str(BUDGET)})
    messages = [(f"ch{n % 4}", {"type": "photo_preview", "n": n, "data": "y" * 100_000}) for n in range(30)]
    assert _publish(stack, messages) == 30
    assert _history(stack)["messages"] == 30
    stack.stop("hub")
    stack.env["BRIDGE_HISTORY_MAX_BYTES"] = str(BUDGET // 4)
    stack.start("hub")
    stack.wait_ready()
    history = _history(stack)
    assert history["bytes"] <= BUDGET // 4 and 0 < history["messages"] <= 10
    assert history["evicted"] == 30 - history["messages"]
    # The newest were kept: a late joiner replays the tail of ch1, and is told the rest is gone.
    cid = stack.handshake("lightroom")
    r = stack.post("/ws/send", {"client_id": cid, "message": {"type": "subscribe", "channels": ["ch1"]}})
    epoch = r.json["response"]["positions"]["ch1"]["epoch"]
    r = stack.post("/ws/send", {"client_id": cid, "message": {
        "type": "subscribe", "channels": ["ch1"], "recover": {"ch1": {"offset": 0, "epoch": epoch}}}})
    report = r.json["response"]["recovery"]["ch1"]
    assert report["offset"] == 8 and report["lost"] > 0 and report["lost"] + report["replayed"] == 8
