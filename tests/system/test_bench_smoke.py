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
    for key in ("fan_0", "fan_1", "fan_http", "control", "pubs"):
        assert by_key[(key, "delivered")] == 100
    assert by_key[("throughput", "lost")] == 0
    figures = {key: result.figures for key, result in suite.results["bridge"].items()}
    # Every HTTP publish of the fan-out was answered; the share of the offered rate is a share.
    assert figures["fan_http"]["answered"] == 100 and figures["fan_http"]["refused"] == 0
    assert 0 < figures["fan_http"]["published"] <= 100
    # The prober's requests were made and timed, each kind.
    control = figures["control"]
    assert control["probes"] >= 3
    assert 0 < control["control_p50"] <= control["control_p99"]
    assert all(control[f"{kind}_p99"] > 0 for kind in ("status", "send", "broadcast"))
    # The flood: what the client got plus what it lost is what was sent; every loss was in `dropped`.
    flood = figures["flood"]
    assert flood["sent"] > 0 and flood["strangers"] == 0
    assert flood["received"] + flood["lost_count"] == flood["sent"]
    assert flood["lost_count"] == flood["counted"] and flood["uncounted"] == 0
    # at these sizes the whole flood may be sent before the first answer: the rate during it may be 0
    assert flood["rate"] >= 0 and flood["offered"] > 0
    # Calls over both transports came back, each its own answer (benchmarks/calls.py checks the rate's).
    for key in ("calls", "calls_lrsocket"):
        assert 0 < figures[key]["p50"] <= figures[key]["p99"] and figures[key]["rate"] > 0
    table = suite.table()
    assert table.count("\n") >= len(ROWS) + 1
    assert "pending" not in table and "error" not in table


@pytest.mark.skipif(not nginx_installed(), reason="nginx with libnginx-mod-nchan is not installed")
def test_compare_with_nchan_produces_ratios(tmp_path):
    raise_fd_limit()
    suite = Suite("quick", tmp_path, log=lambda m: None,
                  only=["lat_http", "fan", "control", "idle", "throughput", "flood"])
    run(suite, suite.run_bridge, suite.run_nchan)
    rows = [r for r in suite.rows() if r["scenario"] in suite.results["nchan"]]
    assert rows
    for r in rows:
        assert r["status"] == "ok", r
        if r["scenario"] == "flood" and r["figure"] in ("counted", "uncounted"):
            assert r["nchan"] is None, r  # nchan does not tell a subscriber what it missed
            continue
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
