"""``lrbridge run``: the Procfile's processes start together and stop together on SIGINT/SIGTERM, no orphans.

The Windows path (uvicorn instead of gunicorn, terminate() instead of
process groups) is forced with ``--platform windows`` so it runs here too.
"""

import os
import signal
import subprocess
import sys

import psutil
import pytest

from tests.stack import ROOT, Stack, wait_for
from tests.system.operator_support import connect


def start_run(tmp_path, *args, env=None):
    """``lrbridge run ARGS`` on free ports; returns ``(process, stack)`` (the stack only for its env and HTTP)."""
    stack = Stack(tmp_path / "run", dict({"BRIDGE_STATUS_INTERVAL": "1"}, **(env or {})))
    out = open(tmp_path / "run.out", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "services.cli", "run", *args], cwd=ROOT, env=stack.env,
                            stdout=out, stderr=subprocess.STDOUT)
    out.close()
    return proc, stack


def output(tmp_path):
    return (tmp_path / "run.out").read_text(errors="replace")


def healthy(stack):
    r = stack.get("/ws/health", timeout=2)
    return r.status == 200 and r.json["status"] == "ok"


def family(proc):
    """Every live process below ``proc`` (gunicorn's workers included)."""
    return psutil.Process(proc.pid).children(recursive=True)


def stop_and_check(proc, tree, sig, tmp_path):
    proc.send_signal(sig)
    try:
        code = proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"lrbridge run did not stop:\n{output(tmp_path)[-3000:]}")
    gone, alive = psutil.wait_procs(tree, timeout=10)
    assert alive == [], f"orphans left: {[(p.pid, p.cmdline()) for p in alive]}"
    return code


@pytest.fixture
def cleanup():
    """Kill by PID whatever a failed test left running."""
    started = []
    yield started
    for proc in started:
        if proc.poll() is None:
            for child in family(proc):
                child.kill()
            proc.kill()
            proc.wait(5)


def test_run_starts_every_procfile_process_and_sigint_stops_them_all(tmp_path, cleanup):
    proc, stack = start_run(tmp_path)
    cleanup.append(proc)
    wait_for(lambda: healthy(stack), 30, interval=0.2, message=f"lrbridge run to be healthy\n{output(tmp_path)}")

    def gateway_processes():
        return sum("gunicorn" in c or "bridge-gateway" in c for c in (" ".join(p.cmdline()) for p in family(proc)))

    # One worker answering makes the bridge healthy; on a busy machine the second may still be starting.
    wait_for(lambda: gateway_processes() >= 3, 30, interval=0.2, message="the gunicorn master and its 2 workers")
    tree = family(proc)
    commands = [" ".join(p.cmdline()) for p in tree]
    assert any("services.hub" in c for c in commands)
    assert any("services.notifier" in c for c in commands)
    client_id, _ = connect(stack)
    assert client_id in {c["id"] for c in stack.get("/ws/clients").json["clients"]}
    wait_for(lambda: "bridge running: dashboard at" in output(tmp_path), 10, message="the ready line")

    assert stop_and_check(proc, tree, signal.SIGINT, tmp_path) == 0
    log_dir = tmp_path / "run" / "logs"
    main_log = (log_dir / "main.log").read_text()
    for service in ("hub", "notifier", "gateway"):
        assert (log_dir / f"{service}.log").exists()
        assert f" {service} INFO " in main_log, service
    assert " run INFO lrbridge.run: stopped: hub (0), notifier (0), gateway (0)" in main_log
    assert output(tmp_path).count("stopped: hub (0)") == 1


def posix_only_packages_missing(tmp_path):
    """A PYTHONPATH folder where gunicorn, uvicorn_worker and uvloop fail to import, as on Windows."""
    folder = tmp_path / "windows-like"
    folder.mkdir()
    for name in ("gunicorn", "uvicorn_worker", "uvloop"):
        (folder / f"{name}.py").write_text(f"raise ImportError('{name} is not installed on Windows')\n")
    return f"{folder}{os.pathsep}{ROOT}"


def test_windows_path_serves_the_api_with_uvicorn_and_stops_on_sigterm(tmp_path, cleanup):
    proc, stack = start_run(tmp_path, "--platform", "windows", env={"PYTHONPATH": posix_only_packages_missing(tmp_path)})
    cleanup.append(proc)
    wait_for(lambda: healthy(stack), 30, interval=0.2, message=f"lrbridge run to be healthy\n{output(tmp_path)}")
    tree = family(proc)
    commands = [" ".join(p.cmdline()) for p in tree]
    assert not any("gunicorn" in c for c in commands), commands
    (gateway,) = [p for p in tree if "services.gateway" in " ".join(p.cmdline())]
    assert gateway.cmdline()[-2:] == ["-m", "services.gateway"]
    assert gateway.ppid() == proc.pid and len(tree) == 3  # no fork: one process per Procfile line
    # the same API: handshake, publish, poll
    client_id, headers = connect(stack, "lightroom", ["jobs"])
    r = stack.post("/ws/notify/job_progress", {"job_id": "w1", "progress": 5})
    assert r.status == 200 and r.json["delivered"] == 1
    r = stack.get(f"/ws/poll?client_id={client_id}", headers=headers)
    assert "job_progress" in [m["type"] for m in r.json["messages"]]
    assert stack.get("/metrics").status == 200

    assert stop_and_check(proc, tree, signal.SIGTERM, tmp_path) == 0


def test_run_stops_everything_when_one_process_dies(tmp_path, cleanup):
    proc, stack = start_run(tmp_path)
    cleanup.append(proc)
    wait_for(lambda: healthy(stack), 30, interval=0.2, message=f"lrbridge run to be healthy\n{output(tmp_path)}")
    tree = family(proc)
    (hub,) = [p for p in tree if "services.hub" in " ".join(p.cmdline())]
    hub.kill()
    assert proc.wait(30) == 1
    gone, alive = psutil.wait_procs(tree, timeout=10)
    assert alive == []
    assert "hub exited with code -9: stopping the others" in output(tmp_path)


def test_run_refuses_an_unknown_process_name(tmp_path):
    r = subprocess.run([sys.executable, "-m", "services.cli", "run", "--only", "nope"], cwd=ROOT,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "no process named nope" in r.stdout
