"""Run every scenario against the bridge (and nchan with ``--compare``) and print one table.

Each figure is the median over its runs; the table says how many. Sizes come
from a profile: ``full`` for ``make bench``, ``quick`` for the smoke test.
"""

import asyncio
import importlib.util
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from benchmarks import calls as bench_calls
from benchmarks import lrsocket, scenarios
from benchmarks.backend import Backend
from benchmarks.targets import Bridge, Nchan, nginx_installed

PROFILES = {
    "full": {
        "lat_count": 500, "lat_warmup": 20, "lat_runs": 3,
        "fan_clients": (100, 1000), "fan_rate": 50.0, "fan_duration": 5.0, "fan_runs": 3,
        "tp_count": 100_000, "tp_runs": 3, "hub_count": 200_000, "hub_runs": 3,
        "idle": (1000, 5000), "idle_controls": 300, "idle_runs": 1,
        "pubs": 200, "pubs_runs": 1,
        "lrs_lat": 300, "lrs_warmup": 20, "lrs_clients": (1, 50), "lrs_messages": 200, "lrs_rate": 50.0,
        "lrs_idle": 10.0, "lrs_runs": 1,
        "calls": 500, "calls_warmup": 20, "calls_rate": 2000, "calls_runs": 1,
        "probe_rate": 30.0, "flood_count": 1_000_000, "flood_seconds": 5.0, "flood_runs": 3,
    },
    "quick": {
        "lat_count": 20, "lat_warmup": 2, "lat_runs": 1,
        "fan_clients": (3, 10), "fan_rate": 20.0, "fan_duration": 0.5, "fan_runs": 1,
        "tp_count": 500, "tp_runs": 1, "hub_count": 2000, "hub_runs": 1,
        "idle": (10, 20), "idle_controls": 10, "idle_runs": 1,
        "pubs": 2, "pubs_runs": 1,
        "lrs_lat": 5, "lrs_warmup": 1, "lrs_clients": (1, 3), "lrs_messages": 5, "lrs_rate": 50.0,
        "lrs_idle": 0.5, "lrs_runs": 1,
        "calls": 10, "calls_warmup": 2, "calls_rate": 20, "calls_runs": 1,
        "probe_rate": 30.0, "flood_count": 3000, "flood_seconds": 0.5, "flood_runs": 1,
    },
}

# The scaling note's points: one dimension varied at a time from a base of
# 100 clients on 1 channel, 50 msg/s, small messages, published over ZeroMQ.
SCALING = {
    "full": {"base": {"clients": 100, "channels": 1, "rate": 50.0, "size": 0}, "duration": 3.0,
             "points": [("clients", 10), ("clients", 1000), ("channels", 10), ("channels", 100),
                        ("rate", 10.0), ("rate", 200.0), ("rate", 1000.0),
                        ("size", 1000), ("size", 10000), ("size", 100000)]},
    "quick": {"base": {"clients": 4, "channels": 1, "rate": 20.0, "size": 0}, "duration": 0.3,
              "points": [("clients", 8), ("channels", 2), ("rate", 40.0), ("size", 1000)]},
}

# (scenario, figure, label, unit, target) -- target is (op, threshold) or None.
ROWS = [
    ("lat_http", "p50", "(a) latency, POST /ws/broadcast", "p50 ms", None),
    ("lat_http", "p99", "", "p99 ms", ("<=", 3.0)),
    ("lat_http", "max", "", "max ms", None),
    ("lat_zmq", "p50", "(a) latency, ZeroMQ backend", "p50 ms", ("<=", 1.0)),
    ("lat_zmq", "p99", "", "p99 ms", ("<=", 2.0)),
    ("lat_zmq", "max", "", "max ms", None),
    ("fan_0", "p50", "(b) fan-out {n} clients, {rate:g} msg/s, ZeroMQ", "p50 ms", None),
    ("fan_0", "p99", "", "p99 ms", None),
    ("fan_0", "delivered", "", "delivered %", (">=", 100.0)),
    ("fan_1", "p50", "(b) fan-out {n} clients, {rate:g} msg/s, ZeroMQ", "p50 ms", None),
    ("fan_1", "p99", "", "p99 ms", ("<=", 100.0)),
    ("fan_1", "delivered", "", "delivered %", (">=", 100.0)),
    ("fan_http", "p50", "(b) fan-out {n} clients, {rate:g} msg/s, POST /ws/broadcast", "p50 ms", None),
    ("fan_http", "p99", "", "p99 ms", ("<=", 100.0)),
    ("fan_http", "delivered", "", "delivered %", (">=", 100.0)),
    ("fan_http", "published", "", "published % of offered", (">=", 100.0)),
    ("fan_http", "publish_p99", "", "broadcast answer p99 ms", None),
    ("control", "control_p50", "(b) control while {n} clients poll, {rate:g} msg/s", "p50 ms", None),
    ("control", "control_p99", "", "p99 ms", ("<=", 10.0)),
    ("control", "status_p99", "", "GET /ws/status p99 ms", None),
    ("control", "send_p99", "", "POST /ws/send p99 ms", None),
    ("control", "broadcast_p99", "", "POST /ws/broadcast p99 ms", None),
    ("control", "delivered", "", "fan-out delivered %", None),
    ("throughput", "rate", "(c) throughput to 1 long-poll client", "delivered msg/s", (">=", 30000.0)),
    ("throughput", "lost", "", "lost %", ("<=", 0.0)),
    ("throughput", "send_rate", "", "sender msg/s", None),
    ("flood", "rate", "(c) ingest flood to 1 long-poll client", "delivered msg/s", (">=", 30000.0)),
    ("flood", "offered", "", "offered msg/s", None),
    ("flood", "lost", "", "lost %", None),
    ("flood", "lost_count", "", "lost messages", None),
    ("flood", "counted", "", "counted in dropped", None),
    ("flood", "uncounted", "", "lost, not counted", ("==", 0.0)),
    ("hub", "rate", "(c) the hub's own rate", "events/s", (">=", 100000.0)),
    ("hub", "hub_us", "", "hub CPU µs/event", None),
    ("hub", "rate_single", "", "events/s, 1 per msg", None),
    ("hub", "hub_us_single", "", "µs/event, 1 per msg", None),
    ("idle_0", "kb_per_conn", "(d) {n} idle parked polls", "KB per poll", ("<=", 20.0)),
    ("idle_0", "control_p99", "", "control p99 ms", None),
    ("idle_1", "kb_per_conn", "(d) {n} idle parked polls", "KB per poll", ("<=", 12.0)),
    ("idle_1", "control_p99", "", "control p99 ms", ("<=", 50.0)),
    ("pubs", "publish_p50", "(e) {n} short-lived publishers", "publish p50 ms", ("<=", 50.0)),
    ("pubs", "publish_p99", "", "publish p99 ms", None),
    ("pubs", "process_p50", "", "process p50 ms", None),
    ("pubs", "delivered", "", "delivered %", (">=", 100.0)),
    # (f) the plug-in's push path: its Lua code under lua5.1 and the SDK stand-in (benchmarks/lrsocket.py)
    ("lrs_lat_lrsocket", "p50", "(f) publish to Lua handler, LrSocket", "p50 ms", None),
    ("lrs_lat_lrsocket", "p99", "", "p99 ms", ("<=", 2.0)),
    ("lrs_lat_longpoll", "p50", "(f) publish to Lua handler, long-poll", "p50 ms", None),
    ("lrs_lat_longpoll", "p99", "", "p99 ms", None),
    ("lrs_cpu_lrsocket_0", "service_us", "(f) LrSocket, {n} plug-in(s)", "service µs/delivered msg", None),
    ("lrs_cpu_longpoll_0", "service_us", "(f) long-poll, {n} plug-in(s)", "service µs/delivered msg", None),
    ("lrs_cpu_lrsocket_1", "service_us", "(f) LrSocket, {n} plug-in(s)", "service µs/delivered msg", None),
    ("lrs_cpu_lrsocket_1", "delivered", "", "delivered %", (">=", 100.0)),
    ("lrs_cpu_longpoll_1", "service_us", "(f) long-poll, {n} plug-in(s)", "service µs/delivered msg", None),
    ("lrs_idle_lrsocket", "idle_cpu", "(f) LrSocket, {n} plug-ins, nothing sent", "service CPU %", None),
    ("lrs_idle_longpoll", "idle_cpu", "(f) long-poll, {n} plug-ins, nothing sent", "service CPU %", None),
    ("lrs_idle_none", "idle_cpu", "(f) no plug-in, nothing sent (the baseline)", "service CPU %", None),
    ("calls", "p50", "(g) call round trip to 1 plug-in, long-poll", "p50 ms", None),
    ("calls", "p99", "", "p99 ms", None),
    ("calls", "rate", "", "calls/s, trivial command", None),
    ("calls_lrsocket", "p50", "(g) call round trip to 1 plug-in, LrSocket", "p50 ms", None),
    ("calls_lrsocket", "p99", "", "p99 ms", None),
    ("calls_lrsocket", "rate", "", "calls/s, trivial command", None),
]

LRS_KEYS = tuple(sorted({row[0] for row in ROWS if row[0].startswith("lrs_")}))

# Figures of the bridge compared with a differently named nchan figure (nchan has no ZeroMQ side).
# nchan's fan-out is published over HTTP already: its 1 000-client run stands for both bridge rows.
NCHAN_EQUIVALENT = {"lat_zmq": "lat_http", "fan_http": "fan_1"}


class Result:
    """One scenario's figures: medians over ``runs``, or why there are none."""

    def __init__(self, runs=0, figures=None, note="", error=None, pending=None):
        self.runs = runs
        self.figures = figures or {}
        self.note = note
        self.error = error
        self.pending = pending


def _median_figures(samples):
    figures = {}
    for key in samples[0]:
        values = [s[key] for s in samples if s.get(key) is not None]
        figures[key] = statistics.median(values) if values else None
    return figures


async def _repeat(runs, make):
    samples = []
    for _ in range(runs):
        samples.append(await make())
    return Result(runs, _median_figures(samples))


class Suite:
    """One benchmark session: the profile, a work folder, and the results per target."""

    def __init__(self, profile="full", workdir=None, log=print, only=None, env=None):
        self.p = PROFILES[profile]
        self.env = dict(env or {})  # settings for every bridge stack (``--set``)
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="bridge-bench-"))
        self.log = log
        self.only = set(only or ())
        self.results = {}

    def wanted(self, key):
        return not self.only or key in self.only or key.split("_")[0] in self.only

    async def _scenario(self, results, key, runs, make, note="", also=()):
        """Run ``make`` ``runs`` times into ``results[key]``, if ``key`` (or one of ``also``) is wanted."""
        if not any(self.wanted(k) for k in (key, *also)):
            return
        self.log(f"  {key} ({runs} run{'s' if runs != 1 else ''})...")
        started = time.monotonic()
        try:
            result = await _repeat(runs, make)
            result.note = note
        except Exception as ex:
            traceback.print_exc(file=sys.stderr)
            result = Result(error=f"{type(ex).__name__}: {ex}")
        results[key] = result
        self.log(f"    done in {time.monotonic() - started:.1f}s")

    # ------------------------------------------------------------- bridge
    async def run_bridge(self):
        """Every scenario against the bridge's own processes (a stack that fails marks its rows)."""
        results = self.results.setdefault("bridge", {})
        for section, keys in ((self._bridge_main, ("lat_http", "lat_zmq", "fan_0", "fan_1", "fan_http", "control",
                                                   "pubs")),
                              (self._bridge_throughput, ("throughput",)), (self._bridge_flood, ("flood",)),
                              (self._bridge_hub, ("hub",)), (self._bridge_idle, ("idle_0", "idle_1")),
                              (self._bridge_lrsocket, LRS_KEYS), (self._bridge_calls, ("calls", "calls_lrsocket"))):
            if not any(self.wanted(k) for k in keys):
                continue
            try:
                await section(results)
            except Exception as ex:
                traceback.print_exc(file=sys.stderr)
                for key in keys:
                    if self.wanted(key):
                        results.setdefault(key, Result(error=f"{type(ex).__name__}: {str(ex)[:200]}"))

    async def _bridge_main(self, results):
        p = self.p
        main = Bridge(self.workdir / "bridge-main", self.env)
        try:
            main.start()
            has_notifier = main.has("notifier")
            backend = Backend(main.env, use_notifier=has_notifier)
            note = backend.mode or ""
            await self._scenario(results, "lat_http", p["lat_runs"],
                                 lambda: scenarios.latency(main, p["lat_count"], p["lat_warmup"]))
            if backend.available:
                await self._scenario(results, "lat_zmq", p["lat_runs"],
                                     lambda: scenarios.latency(main, p["lat_count"], p["lat_warmup"], backend),
                                     note=note)
            else:
                results["lat_zmq"] = Result(pending="the notifier library (services/notifier/client.py)")
            for idx, n in enumerate(p["fan_clients"]):
                await self._scenario(results, f"fan_{idx}", p["fan_runs"],
                                     lambda n=n: scenarios.fanout(main, n, p["fan_rate"], p["fan_duration"],
                                                                  backend if backend.available else None),
                                     note=f"published by a backend over ZeroMQ ({note})" if note else "HTTP publish")
            n = p["fan_clients"][-1]
            await self._scenario(results, "fan_http", p["fan_runs"],
                                 lambda: scenarios.fanout(main, n, p["fan_rate"], p["fan_duration"]),
                                 note="HTTP publishes that do not wait for each other's answer")
            await self._scenario(results, "control", p["fan_runs"],
                                 lambda: scenarios.fanout(main, n, p["fan_rate"], p["fan_duration"],
                                                          backend if backend.available else None,
                                                          probe_rate=p["probe_rate"]),
                                 note=f"one request at a time, {p['probe_rate']:g}/s, the three kinds in turn, "
                                      "while the fan-out runs")
            if _library() and has_notifier:
                await self._scenario(results, "pubs", p["pubs_runs"],
                                     lambda: scenarios.publishers(main, p["pubs"], "library"))
            else:
                results["pubs"] = Result(pending="the notifier library (services/notifier/client.py)")
            backend.close()
        finally:
            main.stop()

    async def _bridge_throughput(self, results):
        p = self.p
        big = Bridge(self.workdir / "bridge-throughput", dict(self.env, BRIDGE_QUEUE_SIZE="1000000"))
        try:
            big.start()
            if big.has("notifier") and not _library():
                results["throughput"] = Result(pending="the notifier library (services/notifier/client.py)")
                return
            mode = "library" if big.has("notifier") else "hub-direct"
            await self._scenario(results, "throughput", p["tp_runs"],
                                 lambda: scenarios.throughput(big, p["tp_count"], mode), note=mode)
        finally:
            big.stop()

    async def _bridge_flood(self, results):
        p = self.p
        target = Bridge(self.workdir / "bridge-flood", self.env)
        try:
            target.start()
            if not (target.has("notifier") and _library()):
                results["flood"] = Result(pending="the notifier library (services/notifier/client.py)")
                return
            await self._scenario(results, "flood", p["flood_runs"],
                                 lambda: scenarios.flood(target, p["flood_count"], p["flood_seconds"], "library"),
                                 note=f"a backend sends as fast as the library does for {p['flood_seconds']:g} s; "
                                      f"BRIDGE_QUEUE_SIZE {self.env.get('BRIDGE_QUEUE_SIZE', 'default')}; "
                                      "polls with ack")
        finally:
            target.stop()

    async def _bridge_hub(self, results):
        p = self.p
        hub_only = Bridge(self.workdir / "bridge-hub", dict(self.env, BRIDGE_QUEUE_SIZE="1000000"))
        try:
            hub_only.stack.start("hub", "gateway").wait_ready(timeout=30)
            await self._scenario(results, "hub", p["hub_runs"], lambda: scenarios.hub_rate(hub_only, p["hub_count"]),
                                 note="events into the hub's SUB, to 1 subscribed client")
        finally:
            hub_only.stop()

    async def _bridge_idle(self, results):
        p = self.p
        fresh = Bridge(self.workdir / "bridge-idle", self.env)
        try:
            fresh.start()
            for idx, n in enumerate(p["idle"]):
                await self._scenario(results, f"idle_{idx}", p["idle_runs"],
                                     lambda n=n: scenarios.idle(fresh, n, p["idle_controls"]))
        finally:
            fresh.stop()

    async def _bridge_calls(self, results):
        p = self.p
        if not bench_calls.available():
            for key in ("calls", "calls_lrsocket"):
                results[key] = Result(pending="lua5.1 for the plug-in under the SDK stand-in")
            return
        target = Bridge(self.workdir / "bridge-calls", self.env)
        try:
            target.start()
            for key, transport in (("calls", "longpoll"), ("calls_lrsocket", "lrsocket")):
                await self._scenario(results, key, p["calls_runs"],
                                     lambda t=transport: bench_calls.calls(
                                         target, self.workdir / f"calls-plugin-{t}", p["calls"], p["calls_warmup"],
                                         p["calls_rate"], transport=t),
                                     note="the plug-in under lua5.1 and the SDK stand-in; 32 calls in flight "
                                          "for the rate")
        finally:
            target.stop()

    async def _bridge_lrsocket(self, results):
        p = self.p
        if not lrsocket.available():
            for key in LRS_KEYS:
                results[key] = Result(pending="lua5.1 (make system-deps)")
            return
        target = Bridge(self.workdir / "bridge-lrsocket", self.env)
        try:
            target.stack.start("hub", "gateway").wait_ready(timeout=30)
            note = "one lua5.1 process, LrSocket stand-in; publish into the hub"
            await self._scenario(results, "lrs_idle_none", p["lrs_runs"],
                                 lambda: lrsocket.idle(target, None, 0, p["lrs_idle"]), note="hub and gateway alone")
            for transport in ("lrsocket", "longpoll"):
                await self._scenario(results, f"lrs_lat_{transport}", p["lrs_runs"],
                                     lambda t=transport: lrsocket.latency(target, t, p["lrs_lat"], p["lrs_warmup"]),
                                     note=note)
                for idx, n in enumerate(p["lrs_clients"]):
                    await self._scenario(
                        results, f"lrs_cpu_{transport}_{idx}", p["lrs_runs"],
                        lambda t=transport, n=n: lrsocket.cpu_per_message(target, t, n, p["lrs_messages"],
                                                                          p["lrs_rate"]),
                        note=f"{p['lrs_messages']} messages at {p['lrs_rate']:g}/s on one channel")
                await self._scenario(
                    results, f"lrs_idle_{transport}", p["lrs_runs"],
                    lambda t=transport: lrsocket.idle(target, t, p["lrs_clients"][-1], p["lrs_idle"]),
                    note=f"{p['lrs_idle']:g} s idle, default check and poll intervals")
        finally:
            target.stop()

    # ------------------------------------------------------------ scaling
    async def run_scaling(self, profile="full"):
        """How cost grows with clients, channels, rate and size; returns the rows."""
        plan = SCALING[profile]
        main = Bridge(self.workdir / "bridge-scaling", self.env)
        rows = []
        try:
            main.start()
            backend = Backend(main.env, use_notifier=main.has("notifier"))
            points = [("base", None)] + plan["points"]
            for dim, value in points:
                params = dict(plan["base"])
                if dim != "base":
                    params[dim] = value
                self.log(f"  scaling {dim}={value if value is not None else ''}...")
                figures = await scenarios.fanout(
                    main, params["clients"], params["rate"], plan["duration"], backend, drain=3.0,
                    channels=params["channels"], size=params["size"])
                rows.append({"dimension": dim, **params, **figures})
            backend.close()
        finally:
            main.stop()
        self.scaling = rows
        return rows

    def scaling_table(self):
        """The scaling rows as text."""
        head = ["varied", "clients", "channels", "msg/s", "bytes", "p50 ms", "p99 ms", "delivered %",
                "service CPU", "service µs per delivery", "client CPU"]
        lines = [[r["dimension"], str(r["clients"]), str(r["channels"]), f"{r['rate']:g}", str(r["size"]),
                  _fmt(r["p50"]), _fmt(r["p99"]), _fmt(r["delivered"]), _pct(r["service_cpu"]),
                  _fmt(r["service_us"]), _pct(r["client_cpu"])] for r in self.scaling]
        widths = [max(len(str(c)) for c in col) for col in zip(head, *lines)]
        fmt = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
        return "\n".join([fmt(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [fmt(c) for c in lines])

    # -------------------------------------------------------------- nchan
    async def run_nchan(self):
        """The same scenarios against nginx + nchan (HTTP publishing: nchan has no ZeroMQ side)."""
        p = self.p
        results = self.results.setdefault("nchan", {})
        target = Nchan(self.workdir / "nchan").start()
        try:
            await self._scenario(results, "lat_http", p["lat_runs"],
                                 lambda: scenarios.latency(target, p["lat_count"], p["lat_warmup"]))
            last = len(p["fan_clients"]) - 1
            for idx, n in enumerate(p["fan_clients"]):
                await self._scenario(results, f"fan_{idx}", p["fan_runs"],
                                     lambda n=n: scenarios.fanout(target, n, p["fan_rate"], p["fan_duration"]),
                                     note="HTTP publish", also=("fan_http",) if idx == last else ())
            await self._scenario(results, "control", p["fan_runs"],
                                 lambda: scenarios.fanout(target, p["fan_clients"][-1], p["fan_rate"],
                                                          p["fan_duration"], probe_rate=p["probe_rate"]),
                                 note="HTTP publish; probes: status page, publishes")
            await self._scenario(results, "pubs", p["pubs_runs"],
                                 lambda: scenarios.publishers(target, p["pubs"], "nchan-http"))
            await self._scenario(results, "throughput", p["tp_runs"],
                                 lambda: scenarios.throughput(target, p["tp_count"], "nchan-http"),
                                 note="HTTP, 4 publishers")
            await self._scenario(results, "flood", p["flood_runs"],
                                 lambda: scenarios.flood(target, p["flood_count"], p["flood_seconds"], "nchan-http"),
                                 note="HTTP, 4 publishers")
        finally:
            target.stop()
        fresh = Nchan(self.workdir / "nchan-idle").start()
        try:
            for idx, n in enumerate(p["idle"]):
                await self._scenario(results, f"idle_{idx}", p["idle_runs"],
                                     lambda n=n: scenarios.idle(fresh, n, p["idle_controls"]))
        finally:
            fresh.stop()

    # ------------------------------------------------------------- report
    def rows(self):
        """Every table row as a dict (what the smoke test checks and the table prints)."""
        p = self.p
        bridge = self.results.get("bridge", {})
        nchan = self.results.get("nchan")
        out = []
        for key, fig, label, unit, target in ROWS:
            if not self.wanted(key):
                continue
            n = None
            if key in ("fan_http", "control"):
                n = p["fan_clients"][-1]
            elif key.startswith("fan_"):
                n = p["fan_clients"][int(key[-1])]
            elif key.startswith("idle_"):
                n = p["idle"][int(key[-1])]
            elif key == "pubs":
                n = p["pubs"]
            elif key.startswith("lrs_cpu_"):
                n = p["lrs_clients"][int(key[-1])]
            elif key.startswith("lrs_idle_"):
                n = p["lrs_clients"][-1]
            res = bridge.get(key)
            row = {
                "scenario": key, "figure": fig, "label": label.format(n=n, rate=p["fan_rate"]), "unit": unit,
                "value": res.figures.get(fig) if res else None,
                "runs": res.runs if res else 0,
                "client_cpu": res.figures.get("client_cpu") if res else None,
                "service_cpu": res.figures.get("service_cpu") if res else None,
                "note": (res.note if res else "") or "",
                "status": "missing",
                "target": target,
                "met": None,
            }
            if res is not None:
                row["status"] = "error" if res.error else ("pending" if res.pending else "ok")
                if res.error:
                    row["note"] = res.error
                elif res.pending:
                    row["note"] = "pending: " + res.pending
            if target and row["value"] is not None:
                op, limit = target
                row["met"] = {"<=": row["value"] <= limit, ">=": row["value"] >= limit,
                              "==": row["value"] == limit}[op]
            if nchan is not None:
                peer = nchan.get(NCHAN_EQUIVALENT.get(key, key))
                row["nchan"] = peer.figures.get(fig) if peer and not peer.error else None
                row["nchan_runs"] = peer.runs if peer else 0
                if row["nchan"] and row["value"] is not None:
                    row["ratio"] = row["value"] / row["nchan"]
                else:
                    row["ratio"] = None
            out.append(row)
        return out

    def table(self):
        """The one table, as text."""
        rows = self.rows()
        compare = "nchan" in self.results
        head = ["scenario", "figure", "bridge", "target", "met", "runs", "client CPU", "service CPU"]
        if compare:
            head += ["nchan", "bridge÷nchan"]
        lines = []
        for r in rows:
            value = _fmt(r["value"]) if r["status"] == "ok" else r["status"]
            target = f"{r['target'][0]} {_fmt(r['target'][1])}" if r["target"] else ""
            met = "" if r["met"] is None else ("yes" if r["met"] else "NO")
            cells = [r["label"], r["unit"], value, target, met, str(r["runs"] or ""),
                     _pct(r["client_cpu"]) if r["label"] else "", _pct(r["service_cpu"]) if r["label"] else ""]
            if compare:
                cells += [_fmt(r.get("nchan")), "" if r.get("ratio") is None else f"{r['ratio']:.2f}"]
            lines.append(cells)
        widths = [max(len(str(c)) for c in col) for col in zip(head, *lines)]
        fmt = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
        text = [fmt(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        text += [fmt(c) for c in lines]
        notes = sorted({(r["label"] or r["scenario"], r["note"]) for r in rows if r["note"] and r["label"]})
        for label, note in notes:
            text.append(f"  {label}: {note}")
        return "\n".join(text)


def _library():
    return importlib.util.find_spec("services.notifier.client") is not None


def _fmt(value):
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _pct(value):
    return "" if value is None else f"{value:.0f} %"


def raise_fd_limit():
    """Lift the soft open-files limit to the hard one (5 000 parked polls need ~10 000 fds)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def machine():
    """One line about where the figures come from."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        commit = "?"
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, commit {commit}"


def new_event_loop():
    """uvloop when installed (the load generator should not be the slow part), else asyncio's."""
    try:
        import uvloop
        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()
