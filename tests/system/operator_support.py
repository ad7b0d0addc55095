"""Helpers for the operator tests (CLI, dashboard, metrics, logs): clients over real HTTP, the CLI as a process."""

import subprocess
import sys

from tests.stack import ROOT, Stack


def live_stack(tmp_path_factory, name):
    """Hub, notifier (status every second) and gateway for a module's tests; a generator for a fixture."""
    stack = Stack(tmp_path_factory.mktemp(name), {"BRIDGE_STATUS_INTERVAL": "1"})
    stack.start("hub", "notifier", "gateway").wait_ready()
    yield stack
    stack.stop_all()


def connect(stack, client_type="lightroom", channels=()):
    """Handshake (and subscribe); returns ``(client_id, headers)`` with the client's secret when it has one."""
    r = stack.post("/ws/handshake", {"client_type": client_type, "protocol_version": "1.0"})
    assert r.status == 200, r
    headers = {"X-Client-Secret": r.json["client_secret"]} if r.json.get("client_secret") else {}
    client_id = r.json["client_id"]
    if channels:
        r = stack.post("/ws/send", {"client_id": client_id, "message": {"type": "subscribe", "channels": list(channels)}},
                       headers=headers)
        assert r.status == 200, r
    return client_id, headers


def poll(stack, client_id, headers, wait=0):
    """One poll; returns the messages."""
    r = stack.get(f"/ws/poll?client_id={client_id}&wait={wait}", headers=headers, timeout=wait + 10)
    assert r.status == 200, r
    return r.json["messages"]


def bridge(stack, *args, timeout=60, env=None):
    """Run ``lrbridge ARGS`` against ``stack`` as a process; returns the CompletedProcess."""
    environ = dict(stack.env)
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=timeout)
