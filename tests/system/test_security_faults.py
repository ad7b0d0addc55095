"""Faults: start orders, a frozen hub, killed or reloaded gateway workers, a dead notifier, wall-clock jumps."""

import http.client
import itertools
import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from tests.stack import Stack, wait_for

UP = {"hub": "hub serving", "notifier": "notifier taking backend events", "gateway": "Booting worker"}
FAKETIME_LIB = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


@pytest.mark.parametrize("order", list(itertools.permutations(("hub", "notifier", "gateway"))),
                         ids=lambda o: ">".join(o))
def test_any_start_order_converges(tmp_path, order):
    stack = Stack(tmp_path, {"BRIDGE_STATUS_INTERVAL": "0.2", "BRIDGE_HUB_TIMEOUT": "1"})
    try:
        for name in order:  # each one up and serving before the next starts
            stack.start(name)
            wait_for(lambda: UP[name] in stack.output(name), timeout=20, message=f"{name} to start")
        stack.wait_ready(timeout=30)
        cid = stack.handshake("lightroom", ["jobs"])
        assert stack.post("/ws/notify/job_progress", {"job_id": "j", "progress": 5}).json["delivered"] == 1
        assert [m["type"] for m in stack.poll(cid).json["messages"]] == ["job_progress"]
        wait_for(lambda: stack.get("/ws/health").json["notifier"]["state"] == "ok", timeout=20,
                 message="the hub to hear the notifier")
    finally:
        stack.stop_all()


def test_frozen_hub_gives_503_within_the_deadline_and_late_replies_never_cross(stack_factory):
    stack = stack_factory({"BRIDGE_HUB_TIMEOUT": "1", "BRIDGE_GATEWAY_WORKERS": "1"})
    cid = stack.handshake()
    hub = stack.procs["hub"]
    hub.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        requests = [("GET", "/ws/status", None), ("POST", "/ws/handshake", {}), ("GET", "/ws/clients", None),
                    ("POST", "/ws/send", {"client_id": cid, "message": {"type": "ping"}})]
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda r: stack.request(r[0], r[1], body=r[2], timeout=10), requests))
        elapsed = time.monotonic() - started
        assert [a.status for a in answers] == [503] * 4, answers
        assert all(a.json["code"] == "hub_unavailable" and a.headers.get("retry-after") for a in answers)
        assert elapsed < 4, elapsed
    finally:
        hub.send_signal(signal.SIGCONT)
    # The hub now answers the four stale requests too; each new request must get its own answer.
    for _ in range(20):
        r = stack.get("/ws/status")
        assert r.status == 200 and "status" in r.json, r
        r = stack.post("/ws/send", {"client_id": cid, "message": {"type": "ping"}})
        assert r.status == 200 and r.json["response"]["type"] == "pong", r
        r = stack.get("/ws/clients")
        assert r.status == 200 and "clients" in r.json, r
        r = stack.post("/ws/handshake", {})
        assert r.status == 200 and "client_id" in r.json, r


def _workers(stack):
    return [p.pid for p in psutil.Process(stack.procs["gateway"].pid).children()]


def _poll_raw(stack, cid, wait, ack):
    conn = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=wait + 15)
    try:
        conn.request("GET", f"/ws/poll?client_id={cid}&wait={wait}&ack={ack}")
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


class Collector:
    """A client that polls with ack until it has seen every expected seq: counts losses and duplicates."""

    def __init__(self, stack, cid):
        self.stack, self.cid = stack, cid
        self.acked = 1  # connection_established was seq 1, drained by the handshake helper
        self.seen = []
        self.errors = 0

    def poll_once(self, wait):
        try:
            status, body = _poll_raw(self.stack, self.cid, wait, self.acked)
        except (OSError, http.client.HTTPException, ValueError):
            self.errors += 1  # the worker died under us: poll again with the same ack
            return
        if status != 200:
            self.errors += 1
            return
        for message in body["messages"]:
            self.seen.append(message["seq"])
            self.acked = max(self.acked, message["seq"])

    def check(self, expected):
        unique = sorted(set(self.seen))
        assert unique == expected, (unique, expected)  # nothing lost
        return len(self.seen) - len(unique)  # redelivered after a lost answer: deduplicated by seq


def _publish(stack, count, tag):
    for n in range(count):
        r = stack.post("/ws/broadcast", {"message": {"type": "evt", "tag": tag, "n": n}, "channel": "photos"})
        assert r.status == 200 and r.json["delivered"] == 1, r


def test_gateway_worker_killed_mid_poll_loses_nothing(stack_factory):
    stack = stack_factory({"BRIDGE_GATEWAY_WORKERS": "1"})
    cid = stack.handshake("lightroom", ["photos"])
    collector = Collector(stack, cid)
    (worker,) = wait_for(lambda: len(_workers(stack)) == 1 and _workers(stack), message="the worker")
    with ThreadPoolExecutor(1) as pool:
        parked = pool.submit(collector.poll_once, 20)
        stack.wait_parked(cid)
        os.kill(worker, signal.SIGKILL)
        parked.result(timeout=15)
    assert collector.errors == 1 and collector.seen == []
    wait_for(lambda: stack.get("/ws/status", timeout=3).status == 200, timeout=20, message="a new worker")
    _publish(stack, 5, "after-kill")  # the hub's answer to the dead worker's poll is lost with it
    collector.poll_once(0)
    expected = list(range(2, 7))
    collector.check(expected)
    collector.poll_once(0)  # acknowledges them all
    r = stack.poll(cid, ack=collector.acked)
    assert r.json["messages"] == []


def test_gunicorn_reload_mid_poll_loses_nothing(stack_factory):
    stack = stack_factory({"BRIDGE_GATEWAY_WORKERS": "2"})
    cid = stack.handshake("lightroom", ["photos"])
    collector = Collector(stack, cid)
    old = wait_for(lambda: len(_workers(stack)) == 2 and set(_workers(stack)), message="2 workers")
    stop = threading.Event()

    def client():
        deadline = time.monotonic() + 40
        while not stop.is_set() and time.monotonic() < deadline:
            collector.poll_once(2)

    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(client)
        _publish(stack, 10, "before")
        stack.signal("gateway", signal.SIGHUP)
        _publish(stack, 10, "during")  # some land on old workers, some on new ones
        wait_for(lambda: not (set(_workers(stack)) & old) and len(_workers(stack)) == 2, timeout=30,
                 message="the old workers to be replaced")
        _publish(stack, 10, "after")
        wait_for(lambda: len(set(collector.seen)) >= 30, timeout=30, interval=0.1, message="all 30 messages")
        stop.set()
        running.result(timeout=30)
    collector.check(list(range(2, 32)))


def test_backend_library_returns_within_its_timeout_when_the_notifier_is_dead(tmp_path):
    from services.notifier.client import NotifierUnavailable, Publisher
    stack = Stack(tmp_path, {"BRIDGE_STATUS_INTERVAL": "0"}).start("hub", "notifier")
    try:
        wait_for(lambda: UP["notifier"] in stack.output("notifier"), message="the notifier")
        stack.kill("notifier")
        publisher = Publisher(stack.env["BRIDGE_NOTIFIER_RPC"], timeout=0.5)
        strict = Publisher(stack.env["BRIDGE_NOTIFIER_RPC"], timeout=0.5, raise_on_drop=True)
        try:
            results = []
            for n in range(20):  # more than a socket buffers, so some must be refused
                started = time.monotonic()
                results.append(publisher.job_progress("j", n % 100))
                assert time.monotonic() - started < 1.5
            assert False in results and publisher.dropped >= 1
            started = time.monotonic()
            with pytest.raises(NotifierUnavailable):
                for n in range(20):
                    strict.job_progress("j", n % 100)
            assert time.monotonic() - started < 20 * 0.5 + 2
        finally:
            started = time.monotonic()
            publisher.close()
            strict.close()
            assert time.monotonic() - started < 3  # closing does not hang either
    finally:
        stack.stop_all()


@pytest.mark.skipif(not FAKETIME_LIB.exists(), reason="libfaketime is not installed (Debian package faketime)")
def test_wall_clock_jumps_of_two_hours_evict_no_one(tmp_path):
    """The hub runs under libfaketime with only the wall clock faked; its timeouts use the monotonic clock."""
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    stack = Stack(tmp_path / "stack", {
        "LD_PRELOAD": str(FAKETIME_LIB), "FAKETIME_TIMESTAMP_FILE": str(offset), "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1", "BRIDGE_STALE_SECONDS": "4",
    })
    stack.start("hub")
    stack.env.pop("LD_PRELOAD")  # the gateway runs on the real clock
    stack.start("gateway").wait_ready()
    try:
        def server_hour():
            return stack.post("/ws/handshake", {}).json["server_time"]

        cid = stack.handshake()
        base = server_hour()
        for jump in ("+2h", "-2h"):
            offset.write_text(jump + "\n")
            wait_for(lambda: server_hour()[11:13] != base[11:13], message=f"the hub's wall clock to jump {jump}")
            # Two stale sweeps (every 1 s) pass with the clock jumped; the client, 1 s idle, must stay.
            assert stack.poll(cid).status == 200
            sweep_end = time.monotonic() + 2.5
            while time.monotonic() < sweep_end:
                ids = [c["id"] for c in stack.get("/ws/clients").json["clients"]]
                assert cid in ids, f"evicted after a {jump} jump"
                time.sleep(0.2)
        # Positive control: real idleness (monotonic) still evicts.
        offset.write_text("+0\n")
        wait_for(lambda: cid not in [c["id"] for c in stack.get("/ws/clients").json["clients"]],
                 timeout=15, message="monotonic stale expiry")
    finally:
        stack.stop_all()
