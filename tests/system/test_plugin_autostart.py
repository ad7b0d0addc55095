"""The plug-in starts the bridge when none answers (Launcher.lua; docs/PLUGIN.md, "Starting the bridge").

The plug-in runs under lua5.1 with the SDK stand-in, whose LrTasks.execute really
runs the command: here the bridge's own launcher (`python -m services.cli run`,
the Procfile's hub, notifier and gateway) on free loopback ports. Whatever the
plug-in started is stopped at teardown by its process group id, which the
stand-in records.
"""

import os
import shlex
import signal
import sys

import psutil
import pytest

from tests.lua.harness import LuaClient
from tests.stack import Stack

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the stand-in's execute runs sh")


def bridge_command():
    """What a photographer enters as Start command, in this checkout's Python: the `run` command."""
    return f"{shlex.quote(sys.executable)} -m services.cli run"


def stop_group(pgid):
    """SIGTERM the process group the plug-in started (the launcher stops its children), then reap all."""
    try:
        family = [psutil.Process(p.pid) for p in psutil.process_iter() if os.getpgid(p.pid) == pgid]
    except (psutil.Error, ProcessLookupError):
        family = []
    family += [child for proc in list(family) for child in proc.children(recursive=True) if child not in family]
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    _, alive = psutil.wait_procs(family, timeout=30)
    for proc in alive:
        proc.kill()
    assert not alive, f"still running 30 s after SIGTERM: {[p.pid for p in alive]}"


@pytest.fixture
def lua_client(tmp_path):
    """Start one Lua client; at teardown stop it, then every process group it started."""
    clients = []

    def start(base_url, **kw):
        client = LuaClient(base_url, tmp_path / f"lua{len(clients)}", **kw)
        clients.append(client)
        return client.start()

    yield start
    for client in clients:
        client.stop()
        for pgid in {e["pid"] for e in client.of("execute") if e.get("pid")}:
            stop_group(pgid)


def test_plugin_starts_the_bridge_when_none_answers_then_connects(tmp_path, lua_client):
    bridge = Stack(tmp_path / "bridge")  # its ports and environment only: nothing runs yet
    command = bridge_command()
    client = lua_client(bridge.base_url, options={"START_COMMAND": command, "START_TIMEOUT": 90},
                        env=bridge.env, deadline=180)
    client.wait("connected", timeout=120)
    runs = client.of("execute")
    assert [r["command"] for r in runs] == [command], runs  # started once, and still running
    assert runs[0].get("status") is None
    # the bridge it started is the real one, and serves this client
    r = bridge.get("/ws/clients")
    assert r.status == 200 and client.client_id in [c.get("client_id", c.get("id")) for c in r.json["clients"]], r
    r = bridge.post("/ws/notify/job_progress", {"job_id": "autostart", "progress": 5})
    assert r.status == 200 and r.json["delivered"] == 1, r
    client.wait("listener", lambda e: e["data"]["job_id"] == "autostart")
    assert len(client.of("execute")) == 1


def test_plugin_does_not_start_a_bridge_that_answers(stack, tmp_path, lua_client):
    marker = tmp_path / "started"
    client = lua_client(stack.base_url, options={"START_COMMAND": f"touch {shlex.quote(str(marker))}"})
    client.wait("connected")
    r = stack.post("/ws/notify/job_progress", {"job_id": "up", "progress": 1})
    assert r.status == 200 and r.json["delivered"] == 1, r
    client.wait("listener", lambda e: e["data"]["job_id"] == "up")
    assert client.of("execute") == [] and not marker.exists()


def test_plugin_without_a_start_command_starts_nothing(tmp_path, lua_client):
    bridge = Stack(tmp_path / "bridge")  # nothing listens on its port
    client = lua_client(bridge.base_url, options={"RECONNECT_DELAY": 0.1, "RECONNECT_MAX_DELAY": 0.1},
                        env=bridge.env)
    client.wait("reconnecting", count=5)
    assert client.of("execute") == []
