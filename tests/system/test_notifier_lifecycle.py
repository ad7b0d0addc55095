"""The notifier's own behaviour over time: status sampling and warnings, restarts, shutdown."""

import itertools
import json
import shutil
import threading
import time

import pytest

from services.notifier.client import Publisher
from tests.stack import wait_for
from tests.system.notifier_support import collect, handshake, has, wait_for_notifier

SERVICES = ("hub", "gateway", "notifier")


def statuses(got):
    return [m for m in got if m["type"] == "system_status"]


def warnings(got):
    return [(m["resource"], m["level"], m["value"]) for m in got if m["type"] == "resource_warning"]


def test_machine_status_arrives_on_channel_system(stack_factory):
    stack = stack_factory({"BRIDGE_STATUS_INTERVAL": "0.2"}, services=SERVICES)
    client = handshake(stack, "lightroom", channels=["system"])
    got = collect(stack, client, lambda got: len(statuses(got)) >= 2, timeout=15)
    status = statuses(got)[-1]
    assert status["channel"] == "system"
    fields = status["status"]
    for key in ("cpu_usage", "memory_usage", "disk_usage"):
        assert isinstance(fields[key], (int, float)) and 0 <= fields[key] <= 100, (key, fields)
    assert fields["memory_total"] > 0 and fields["disk_total"] > 0
    if shutil.which("nvidia-smi") is None:
        assert not {"gpus", "gpu_usage", "gpu_temp"} & set(fields), "GPU fields without a GPU"


def test_resource_warning_fires_once_per_crossing(stack_factory, tmp_path):
    """The sampled value comes from a file (BRIDGE_STATUS_SOURCE); thresholds and hysteresis are the real code."""
    source = tmp_path / "status.json"
    step = itertools.count()

    def sample(cpu):
        """Write a value and wait until a client has seen it sampled three times."""
        marker = next(step)
        tmp = tmp_path / "status.tmp"
        tmp.write_text(json.dumps({"cpu_usage": cpu, "step": marker}))
        tmp.replace(source)  # atomic: the sampler never reads half a file
        return collect(stack, client, lambda got: sum(
            1 for m in statuses(got) if m["status"]["step"] == marker) >= 3, timeout=15)

    source.write_text(json.dumps({"cpu_usage": 10, "step": -1}))
    stack = stack_factory({
        "BRIDGE_STATUS_INTERVAL": "0.05", "BRIDGE_STATUS_SOURCE": str(source),
        "BRIDGE_WARN_CPU": "80", "BRIDGE_WARN_HYSTERESIS": "10", "BRIDGE_QUEUE_SIZE": "1000",
    }, services=SERVICES)
    client = handshake(stack, "lightroom", channels=["system"])
    assert warnings(sample(50)) == []
    assert warnings(sample(95)) == [("cpu", "warning", 95)]  # crossed: one warning, not one per sample
    assert warnings(sample(97)) == []  # still above: quiet
    assert warnings(sample(75)) == []  # below the threshold but inside the hysteresis band: still alarmed
    assert warnings(sample(85)) == []  # so going back above is not a new crossing
    assert warnings(sample(60)) == [("cpu", "ok", 60)]  # recovered: one "ok", re-armed
    got = sample(90)
    assert warnings(got) == [("cpu", "warning", 90)]  # a second crossing warns again
    warning = next(m for m in got if m["type"] == "resource_warning")
    assert warning["channel"] == "system" and warning["threshold"] == 80 and warning["message"]


def test_notifier_restart_while_a_backend_keeps_publishing(stack_factory):
    stack = stack_factory({"BRIDGE_STATUS_INTERVAL": "0", "BRIDGE_QUEUE_SIZE": "1000"}, services=SERVICES)
    publisher = Publisher(stack.env["BRIDGE_NOTIFIER_RPC"], timeout=0.5)
    wait_for_notifier(stack, publisher)
    client = handshake(stack, "lightroom", channels=["jobs"])
    hub_pid, gateway_pid = stack.procs["hub"].pid, stack.procs["gateway"].pid
    counter = itertools.count()
    stop = threading.Event()
    slowest = []

    def backend():
        while not stop.is_set():
            started = time.monotonic()
            publisher.job_progress("steady", 50, sequence=next(counter))
            slowest.append(time.monotonic() - started)
            stop.wait(0.02)

    thread = threading.Thread(target=backend, daemon=True)
    thread.start()
    try:
        collect(stack, client, lambda got: len(got) >= 5)
        stack.kill("notifier")
        restarted_at = next(counter)  # every event after this one was sent once the notifier was gone
        stack.start("notifier")
        got = collect(stack, client, lambda got: any(m["sequence"] > restarted_at + 5 for m in got), timeout=20)
    finally:
        stop.set()
        thread.join(5)
        publisher.close()
    assert max(slowest) < 0.5 + 0.3, "a send waited longer than its timeout"
    sequences = [m["sequence"] for m in got]
    assert sequences == sorted(sequences)
    assert (stack.procs["hub"].pid, stack.procs["gateway"].pid) == (hub_pid, gateway_pid)
    assert stack.procs["hub"].poll() is None and stack.procs["gateway"].poll() is None


def test_hub_restart_needs_no_notifier_restart(stack_factory):
    stack = stack_factory({"BRIDGE_STATUS_INTERVAL": "0"}, services=SERVICES)
    publisher = Publisher(stack.env["BRIDGE_NOTIFIER_RPC"], timeout=1.0, raise_on_drop=True)
    wait_for_notifier(stack, publisher)
    notifier_pid = stack.procs["notifier"].pid
    stack.kill("hub")
    wait_for(lambda: "no hub subscribed" in stack.output("notifier"), 10, message="the notifier to notice")
    # Sent while no hub listens: the notifier holds it instead of dropping it.
    publisher.broadcast({"type": "held", "n": 1}, channel="jobs")
    stack.start("hub")
    stack.wait_ready()
    client = handshake(stack, "lightroom", channels=["jobs"])  # the new hub knows no one: handshake again
    publisher.job_progress("after-restart", 10)
    got = collect(stack, client, has("job_id", "after-restart"))
    assert got[-1]["job_id"] == "after-restart"
    assert stack.procs["notifier"].pid == notifier_pid
    assert "forwarding 1 held events" in stack.output("notifier")
    publisher.close()


def test_sigterm_stops_the_notifier_cleanly(stack_factory):
    stack = stack_factory({"BRIDGE_STATUS_INTERVAL": "0.1"}, services=SERVICES)
    publisher = Publisher(stack.env["BRIDGE_NOTIFIER_RPC"], timeout=1.0)
    wait_for_notifier(stack, publisher)
    publisher.close()
    started = time.monotonic()
    assert stack.stop("notifier") == 0
    assert time.monotonic() - started < 5
    assert "notifier stopped" in stack.output("notifier")


@pytest.mark.parametrize("key, value", [("BRIDGE_STATUS_INTERVAL", "soon"), ("BRIDGE_WARN_CPU", "-1")])
def test_bad_configuration_is_named_and_exits(stack_factory, key, value):
    stack = stack_factory({key: value}, services=("notifier",), ready=False)
    proc = stack.procs["notifier"]
    proc.wait(15)
    assert proc.returncode == 2
    assert key in stack.output("notifier")


def test_ingest_address_in_use_is_reported(stack_factory):
    first = stack_factory({"BRIDGE_STATUS_INTERVAL": "0"}, services=("notifier",), ready=False)
    wait_for(lambda: "notifier taking backend events" in first.output("notifier"), 15, message="the first notifier")
    second = stack_factory(dict(first.env), services=("notifier",), ready=False)
    proc = second.procs["notifier"]
    proc.wait(15)
    assert proc.returncode == 1
    assert "cannot start" in second.output("notifier")
