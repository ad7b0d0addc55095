"""The benchmark suite at tiny sizes: every figure of the table is produced.

Timing thresholds live in the benchmark (``make bench``), never here.
"""

import pytest

from benchmarks.suite import ROWS, Suite, new_event_loop, nginx_installed, raise_fd_limit


def run(suite, *parts):
    loop = new_event_loop()
    try:
        for part in parts:
            loop.run_until_complete(part())
    finally:
        loop.close()


def test_every_figure_is_produced(tmp_path):
    raise_fd_limit()
    suite = Suite("quick", tmp_path, log=lambda m: None)
    run(suite, suite.run_bridge)
    rows = suite.rows()
    assert len(rows) == len(ROWS)
    broken = [(r["scenario"], r["figure"], r["status"], r["note"]) for r in rows if r["status"] != "ok"]
    assert broken == []
    assert all(isinstance(r["value"], float | int) for r in rows)
    assert all(r["runs"] >= 1 for r in rows)
    by_key = {(r["scenario"], r["figure"]): r["value"] for r in rows}
    # Every message reached its clients; nothing was lost on the way.
    for key in ("fan_0", "fan_1", "pubs"):
        assert by_key[(key, "delivered")] == 100
    assert by_key[("throughput", "lost")] == 0
    table = suite.table()
    assert table.count("\n") >= len(ROWS) + 1
    assert "pending" not in table and "error" not in table


@pytest.mark.skipif(not nginx_installed(), reason="nginx with libnginx-mod-nchan is not installed")
def test_compare_with_nchan_produces_ratios(tmp_path):
    raise_fd_limit()
    suite = Suite("quick", tmp_path, log=lambda m: None, only=["lat_http", "fan", "idle", "throughput"])
    run(suite, suite.run_bridge, suite.run_nchan)
    rows = [r for r in suite.rows() if r["scenario"] in suite.results["nchan"]]
    assert rows
    for r in rows:
        assert r["status"] == "ok", r
        assert r["nchan"] is not None, r
        if r["nchan"]:  # a ratio to 0 (nothing lost) has no meaning
            assert r["ratio"] is not None, r
    assert "bridge÷nchan" in suite.table()


def test_scaling_points_are_measured(tmp_path):
    raise_fd_limit()
    suite = Suite("quick", tmp_path, log=lambda m: None)
    loop = new_event_loop()
    try:
        rows = loop.run_until_complete(suite.run_scaling("quick"))
    finally:
        loop.close()
    assert [r["dimension"] for r in rows] == ["base", "clients", "channels", "rate", "size"]
    for r in rows:
        assert r["delivered"] == 100, r
        assert r["p50"] is not None and r["service_us"] is not None, r  # CPU ticks are 10 ms: may be 0 here
    assert "service µs per delivery" in suite.scaling_table()


def test_lockstep_gives_a_cost_per_poll_for_every_process(tmp_path):
    from benchmarks.lockstep import lockstep
    from benchmarks.targets import Bridge

    raise_fd_limit()
    target = Bridge(tmp_path, {}).start()
    loop = new_event_loop()
    try:
        figures = loop.run_until_complete(lockstep(target, clients=3, rounds=3))
    finally:
        loop.close()
        target.stop()
    roles = set(figures["per_poll_us"])
    assert {"hub", "notifier", "gateway worker 1", "gateway worker 2"} == roles
    # CPU times tick in 10 ms, so a tiny run may read 0 for a process; the sizes of make bench do not.
    assert all(us >= 0 for us in figures["per_poll_us"].values()) and figures["client_us"] >= 0
    assert figures["round_ms"] > 0
