"""No orphans: a process the bridge starts stops soon after the process that started it dies by SIGKILL.

A gunicorn worker watches its master; the processes of ``lrbridge run`` watch
``lrbridge run`` (services/parentwatch.py). Before, two workers of a killed
master kept serving with parent 1 for minutes and held the port.
"""

import signal
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest

from tests.stack import ROOT, Stack, wait_for

GONE_DEADLINE = 20.0  # the watch looks every 0.5 s and gives requests in hand 2 s; the rest is load


def _gone(proc):
    try:
        return proc.status() == psutil.STATUS_ZOMBIE  # reparented to a PID 1 that may never reap it
    except psutil.NoSuchProcess:
        return True


def _wait_gone(procs, what):
    wait_for(lambda: all(_gone(p) for p in procs), GONE_DEADLINE, interval=0.1,
             message=f"{what} to exit: {[(p.pid, p.cmdline()) for p in procs if not _gone(p)]}")


def test_workers_of_a_killed_master_exit_and_a_new_gateway_takes_the_port(tmp_path):
    stack = Stack(tmp_path, {"BRIDGE_GATEWAY_WORKERS": "2"})
    workers = []
    try:
        stack.start("hub", "gateway").wait_ready()
        master = psutil.Process(stack.procs["gateway"].pid)
        workers = wait_for(lambda: len(master.children()) == 2 and master.children(), 20, message="two workers")
        client_id = stack.handshake()
        in_hand = {}
        poller = threading.Thread(target=lambda: in_hand.update(r=stack.poll(client_id, wait=20, timeout=40)))
        poller.start()
        stack.wait_parked(client_id)
        stack.kill("gateway")  # SIGKILL: the master cannot stop its workers
        _wait_gone(workers, "the workers of the killed master")
        poller.join(40)
        r = in_hand["r"]  # answered, not cut: the client is told to retry
        assert r.status == 503 and r.json["code"] == "hub_unavailable" and r.headers["retry-after"] == "1", r
        assert "Traceback" not in stack.output("gateway")

        stack.start("gateway").wait_ready()  # the same port, free again
        new_master = psutil.Process(stack.procs["gateway"].pid)
        assert new_master.pid != master.pid and len(wait_for(new_master.children, 20)) >= 1
        assert stack.get(f"/ws/poll?client_id={client_id}").status == 200  # the hub kept the session
    finally:
        stack.stop_all()
        for worker in workers:  # only if the test failed: by PID
            if not _gone(worker):
                worker.kill()


def _start_run(tmp_path, *args):
    stack = Stack(tmp_path / "run")
    out = open(tmp_path / "run.out", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "services.cli", "run", *args], cwd=ROOT, env=stack.env,
                            stdout=out, stderr=subprocess.STDOUT)
    out.close()
    return proc, stack


def _kill_and_check(proc, stack, out_path, what, expect, count=None, check=None):
    """Wait until ``proc``'s bridge is healthy, SIGKILL ``proc`` and wait for every process under it to exit."""
    tree = []
    try:
        def healthy():
            assert proc.poll() is None, out_path.read_text(errors="replace")[-3000:]
            r = stack.get("/ws/health", timeout=2)
            return r.status == 200 and r.json["status"] == "ok"
        wait_for(healthy, 40, interval=0.2, message=f"{what} to be healthy")
        if check is not None:
            check()
        tree = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in tree)
        assert all(name in names for name in expect), names
        if count is not None:
            assert len(tree) == count
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        _wait_gone(tree, f"the processes of the killed {what}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        for child in tree:
            if not _gone(child):
                child.kill()


@pytest.mark.parametrize("platform", ["auto", "windows"])
def test_every_process_of_a_killed_bridge_run_exits(tmp_path, platform):
    proc, stack = _start_run(tmp_path, "--platform", platform)
    _kill_and_check(proc, stack, tmp_path / "run.out", "lrbridge run",
                    ("services.hub", "services.notifier", "services.gateway"),
                    count=3 if platform == "windows" else 5)  # with gunicorn: master + 2 workers


def test_every_process_of_a_killed_make_run_honcho_exits(tmp_path):
    """``make run``'s own start line (honcho names itself in BRIDGE_PARENT_PID), run by sh as make runs it."""
    plan = subprocess.run(["make", "-n", "run", f"VENV={tmp_path / 'unused-venv'}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=30)
    (line,) = [line for line in plan.stdout.splitlines() if "honcho start" in line]
    stack = Stack(tmp_path / "honcho")
    env = dict(stack.env, PATH=f"{Path(sys.executable).parent}:{stack.env.get('PATH', '')}")
    out = open(tmp_path / "honcho.out", "wb")
    proc = subprocess.Popen(["sh", "-c", line], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    out.close()

    def exec_d():  # the shell exec'd honcho: the same pid
        assert "honcho" in " ".join(psutil.Process(proc.pid).cmdline())
    _kill_and_check(proc, stack, tmp_path / "honcho.out", "honcho",
                    ("services.hub", "services.notifier", "gunicorn"), check=exec_d)
