"""The global byte budget of channel history (services/hub/history.py), by plain calls and on a store file."""

import itertools
import os

from services import protocol
from services.hub.config import HubConfig
from services.hub.history import History, size_of
from services.hub.hub import Hub
from services.hub.store import SqliteStore


class Wall:
    def __init__(self):
        self.now = 1_700_000_000.0

    def __call__(self):
        self.now += 0.001  # every message a little newer than the last
        return self.now


def _history(max_bytes, size=1000):
    return History(size, 86400.0, 1000, Wall(), mint_epoch=lambda: "e1", max_bytes=max_bytes)


def _blob(n, length=1000):
    return {"type": "preview", "n": n, "data": "z" * length}


def test_the_oldest_message_goes_first_whatever_its_channel():
    one = size_of({**_blob(0), "offset": 1, "epoch": "e1"})
    history = _history(max_bytes=3 * one)
    for n, channel in enumerate(["a", "b", "a", "c", "b"]):
        history.record(channel, _blob(n))
    kept = {name: [e[2]["n"] for e in ch.entries] for name, ch in history.channels.items()}
    assert kept == {"a": [2], "b": [4], "c": [3]}  # 0 (a) and 1 (b) were the oldest
    assert history.bytes == 3 * one and history.count() == 3
    assert history.describe() == {"channels": 3, "messages": 3, "bytes": 3 * one, "max_bytes": 3 * one,
                                  "evicted": 2, "evicted_bytes": 2 * one}
    assert history.changes.trimmed == {"a": 2, "b": 2}  # the store deletes the rows below these offsets


def test_recovering_an_evicted_position_reports_the_loss():
    one = size_of({**_blob(0), "offset": 1, "epoch": "e1"})
    history = _history(max_bytes=2 * one)
    for n in range(5):
        history.record("a", _blob(n))
    missed, report = history.since("a", 1, "e1", budget=100)
    assert [m["n"] for m in missed] == [3, 4]
    assert report == {"recovered": False, "replayed": 2, "lost": 2, "epoch_changed": False, "offset": 5,
                      "epoch": "e1"}


def test_a_message_larger_than_the_budget_is_not_kept_and_is_counted():
    history = _history(max_bytes=500)
    history.record("a", _blob(0))
    assert history.count() == 0 and history.bytes == 0 and history.evicted == 1
    assert history.channels["a"].position() == {"offset": 1, "epoch": "e1"}  # its offset was still used
    _, report = history.since("a", 0, "e1", budget=10)
    assert report["lost"] == 1 and report["replayed"] == 0


def test_other_bounds_keep_the_byte_count_exact_and_the_age_order_small():
    history = _history(max_bytes=10**9, size=3)
    for n in range(5000):
        history.record(f"ch{n % 7}", _blob(n, 10))
    assert history.count() == 21
    assert history.bytes == sum(e[3] for ch in history.channels.values() for e in ch.entries)
    assert len(history.order) <= 2 * 21 + 64  # stale positions of count-trimmed messages are swept
    assert history.evicted == 0 and history.freed_bytes > 0


def test_one_busy_channel_trims_its_age_order_without_sorting(monkeypatch):
    history = _history(max_bytes=10**9, size=100)
    sorts = []
    real = history._order_by_age
    monkeypatch.setattr(history, "_order_by_age", lambda: (sorts.append(1), real()))
    for n in range(20_000):
        history.record("busy", _blob(n, 10))
        assert len(history.order) <= 2 * history.count() + 64
    assert history.count() == 100 and sorts == []  # stale entries were all at the front: dropped, never sorted
    assert [offset for _, offset in history.order][-100:] == list(range(19_901, 20_001))


def test_a_forgotten_channel_gives_its_bytes_back():
    history = History(1000, 86400.0, 2, Wall(), max_bytes=10**9)
    for n, channel in enumerate(["a", "a", "b", "c"]):  # c pushes out a, the least recently used
        history.record(channel, _blob(n))
    assert set(history.channels) == {"b", "c"}
    assert history.bytes == sum(e[3] for ch in history.channels.values() for e in ch.entries)
    assert history.count() == 2


def _store_hub(path, max_bytes):
    ids = (f"client-{n}" for n in itertools.count(1))
    clock = itertools.count(1000)
    store = SqliteStore(path)
    hub = Hub(HubConfig(history_max_bytes=max_bytes), lambda *a: None, clock=lambda: next(clock),
              wallclock=Wall(), new_id=lambda: next(ids), store=store)
    hub.restore(store.load())
    return hub, store


def _file_kib(path):
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p)) // 1024


def test_the_store_file_stops_growing_at_about_the_budget(tmp_path):
    """Rows of evicted messages are deleted and collected as the budget churns; SQLite reuses their pages."""
    path = str(tmp_path / "hub.sqlite3")
    budget = 2 * 2**20
    hub, store = _store_hub(path, budget)

    def churn(start, count):
        for n in range(start, start + count):
            hub.publish(protocol.TARGET_CHANNEL, _blob(n, 100_000), f"ch{n % 50}")
            if n % 4 == 3:
                store.commit(hub.changes)

    churn(0, 200)  # 20 MB: ten budgets, the file reaches its size
    settled = _file_kib(path)
    churn(200, 800)  # 80 MB more
    assert _file_kib(path) <= settled + 1024, (settled, _file_kib(path))
    assert settled < 8 * budget // 1024
    counts = store.counts()
    assert counts["history"] == hub.history.count() <= budget // 100_000
    assert counts["messages"] <= 2 * counts["history"] + 4 * 4  # runs hold at most twice what is live

    # A restart with a smaller budget evicts at load and deletes the rows at the next commit.
    store.close()
    hub, store = _store_hub(path, budget // 4)
    assert hub.history.bytes <= budget // 4 and hub.history.evicted > 0
    store.commit(hub.changes)
    assert store.counts()["history"] == hub.history.count()
    store.close()
