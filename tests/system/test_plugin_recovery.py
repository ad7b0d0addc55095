"""The Lua client across Lightroom restarts and lost sessions: resume, recovery from channel history.

The plug-in keeps its session (client id and secret), the last seq it
processed and, per channel, the offset and epoch of the last channel message
it processed in LrPrefs. The shim keeps LrPrefs in a file
(LR_SHIM_PREFS_FILE), so a second lua5.1 process with the same file is the
same Lightroom started again. The hub keeps its state in the stack's SQLite
file (BRIDGE_STORE), as by default.
"""

import json
import shutil

import pytest

from tests.system.plugin_support import FAST, notify_progress, progress_ids
from tests.lua.lossy_proxy import LossyProxy

pytestmark = pytest.mark.skipif(not shutil.which("lua5.1"), reason="needs lua5.1: run `make system-deps`")

# The first run's polls are held long, so that a quit that waited for the hold would show.
LONG_HOLD = dict(FAST, POLL_WAIT=20)




def wait_job(client, job_id):
    """Wait until ``job_id``'s job_progress went through every listener ('*' hears it last); returns its data."""
    found = client.wait("message", lambda e: e["data"].get("job_id") == job_id)
    return found[0]["data"]


def message_types(client):
    return [e["data"]["type"] for e in client.of("message")]


def quit_lightroom(stack, client):
    """What LrShutdownApp does: stop every task, keep the session; returns the prefs it left."""
    client.command(stack, "shutdown", delay=1.0)  # once the next poll is parked
    stopped = client.wait("stopped", timeout=25)[0]
    assert stopped["tasks"] == 0 and stopped["errors"] == 0, stopped
    assert stopped["seconds"] < 10.0, stopped  # the parked poll was released, not held its 20 s
    assert client.wait_exit() == 0
    return client.prefs()


def first_run(stack, lua_clients, prefs, jobs, **kw):
    """A client that receives job_progress ``jobs`` and quits; returns (client, its prefs)."""
    client = lua_clients(stack, prefs_file=prefs, options=LONG_HOLD, **kw)
    client.wait("connected")
    for job in jobs:
        assert notify_progress(stack, job) == 1
    wait_job(client, jobs[-1])
    return client, quit_lightroom(stack, client)


def test_lightroom_restart_resumes_the_session_and_receives_exactly_the_missed_messages(stack, lua_clients, tmp_path):
    prefs = tmp_path / "prefs.json"
    first, saved = first_run(stack, lua_clients, prefs, ["a0", "a1", "a2"])
    first_id = first.of("connected")[0]["data"]["client_id"]
    last_seq = first.of("message")[-1]["data"]["seq"]
    assert (saved["bridgeClientId"], saved["bridgeLastSeq"]) == (first_id, last_seq)
    assert saved["bridgeServer"] == stack.base_url
    positions = json.loads(saved["bridgePositions"])
    assert positions["jobs"]["offset"] == 3, positions  # a0..a2 were the channel's messages 1..3
    assert {"jobs", "system", "photos"} <= set(positions)
    # the session stays at the bridge, and queues what is published meanwhile
    assert any(c["id"] == first_id for c in stack.get("/ws/clients").json["clients"])
    for i in range(5):
        assert notify_progress(stack, f"b{i}") == 1

    second = lua_clients(stack, prefs_file=prefs, options=FAST)
    connected = second.wait("connected")[0]["data"]
    assert (connected["client_id"], connected["resumed"]) == (first_id, True)
    wait_job(second, "b4")
    assert notify_progress(stack, "live") == 1
    wait_job(second, "live")

    assert progress_ids(second) == ["b0", "b1", "b2", "b3", "b4", "live"]
    assert message_types(second) == ["job_progress"] * 6  # no new welcome, no snapshot: the queue continued
    seqs = [e["data"]["seq"] for e in second.of("message")]
    assert seqs == list(range(last_seq + 1, last_seq + 7))
    assert second.of("recovery") == []
    assert len([c for c in stack.get("/ws/clients").json["clients"] if c["id"] == first_id]) == 1


def test_a_session_the_bridge_removed_is_recovered_from_channel_history(stack, lua_clients, tmp_path):
    prefs = tmp_path / "prefs.json"
    first, _ = first_run(stack, lua_clients, prefs, ["a0", "a1", "a2"])
    first_id = first.of("connected")[0]["data"]["client_id"]
    r = stack.post("/ws/cleanup", {"timeout_minutes": 0})
    assert r.status == 200 and first_id in r.json["removed_clients"], r
    for i in range(5):
        assert notify_progress(stack, f"b{i}") == 0  # no subscriber: only the channel history has them

    second = lua_clients(stack, prefs_file=prefs, options=FAST)
    connected = second.wait("connected")[0]["data"]
    assert connected["client_id"] != first_id and connected["resumed"] is False
    recovery = second.wait("recovery")[0]["data"]
    assert recovery["complete"] is True and recovery["lost"] == 0 and recovery["replayed"] == 5, recovery
    assert recovery["channels"]["jobs"] == {"recovered": True, "replayed": 5, "lost": 0, "epoch_changed": False}
    wait_job(second, "b4")
    assert notify_progress(stack, "live") == 1
    wait_job(second, "live")

    assert progress_ids(second) == ["b0", "b1", "b2", "b3", "b4", "live"]
    # everything recovered: no snapshot is needed
    assert message_types(second) == ["connection_established"] + ["job_progress"] * 6
    assert [line for line in second.log_lines() if "recovered every missed channel message" in line]
    assert second.prefs()["bridgeClientId"] == connected["client_id"]


def test_a_session_lost_while_running_is_recovered_after_the_network_returns(stack, lua_clients, tmp_path):
    """The bridge drops the client while the network is down: messages of that gap come from the history."""
    proxy = LossyProxy(stack.http_port).start()
    try:
        client = lua_clients(stack, base_url=proxy.base_url, prefs_file=tmp_path / "prefs.json", options=FAST)
        first_id = client.wait("connected")[0]["data"]["client_id"]
        for job in ("a0", "a1"):
            assert notify_progress(stack, job) == 1
        wait_job(client, "a1")

        proxy.blocked = True
        r = stack.post("/ws/disconnect", {"client_id": first_id})  # its parked poll is answered `closed`
        assert r.status == 200, r
        client.wait("reconnecting")  # the new handshake does not get through
        for i in range(5):
            assert notify_progress(stack, f"b{i}") == 0
        proxy.blocked = False

        connected = client.wait("connected", lambda e: e["data"]["client_id"] != first_id, timeout=15)[0]["data"]
        assert connected["resumed"] is False
        recovery = client.wait("recovery")[0]["data"]
        assert recovery["complete"] is True and recovery["channels"]["jobs"]["replayed"] == 5, recovery
        wait_job(client, "b4")
        assert notify_progress(stack, "live") == 1
        wait_job(client, "live")
        assert progress_ids(client) == ["a0", "a1", "b0", "b1", "b2", "b3", "b4", "live"]
        assert proxy.refused >= 1
    finally:
        proxy.stop()


def test_history_too_short_reports_how_many_are_gone(stack_factory, lua_clients, tmp_path):
    stack = stack_factory(env={"BRIDGE_HISTORY_SIZE": "5"})
    prefs = tmp_path / "prefs.json"
    first, _ = first_run(stack, lua_clients, prefs, ["a0", "a1"])  # jobs offsets 1, 2
    r = stack.post("/ws/cleanup", {"timeout_minutes": 0})
    assert r.status == 200 and r.json["removed"] >= 1, r
    for i in range(12):  # offsets 3..14; the history keeps 10..14
        notify_progress(stack, f"b{i}")

    second = lua_clients(stack, prefs_file=prefs, options=FAST)
    second.wait("connected")
    recovery = second.wait("recovery")[0]["data"]
    assert recovery["complete"] is False and recovery["lost"] == 7, recovery
    assert recovery["channels"]["jobs"] == {"recovered": False, "replayed": 5, "lost": 7, "epoch_changed": False}
    assert recovery["epoch_changed"] == []
    second.wait("message", type_="jobs_snapshot")
    assert notify_progress(stack, "live") == 1
    wait_job(second, "live")

    assert progress_ids(second) == ["b7", "b8", "b9", "b10", "b11", "live"]
    # the newest kept messages, then the jobs state as of the newest, then live ones
    kinds = message_types(second)
    assert kinds == ["connection_established"] + ["job_progress"] * 5 + ["jobs_snapshot", "job_progress"], kinds
    gone = [line for line in second.log_lines() if "some missed channel messages are gone: " in line]
    assert len(gone) == 1 and "jobs 5 replayed, 7 gone" in gone[0], gone


def test_a_hub_that_lost_its_history_reports_a_new_epoch(stack_factory, lua_clients, tmp_path):
    stack = stack_factory(env={"BRIDGE_STORE": ":memory:", "BRIDGE_HUB_TIMEOUT": "1"})
    client = lua_clients(stack, prefs_file=tmp_path / "prefs.json", options=FAST)
    first_id = client.wait("connected")[0]["data"]["client_id"]
    assert notify_progress(stack, "a0") == 1
    wait_job(client, "a0")
    old_epoch = client.of("listener", "job_progress")[0]["data"]["epoch"]

    stack.kill("hub")
    stack.start("hub").wait_ready()

    connected = client.wait("connected", lambda e: e["data"]["client_id"] != first_id, timeout=20)[0]["data"]
    assert connected["resumed"] is False
    recovery = client.wait("recovery")[0]["data"]
    assert recovery["complete"] is False and "jobs" in recovery["epoch_changed"], recovery
    assert recovery["channels"]["jobs"]["epoch_changed"] is True and "lost" not in recovery["channels"]["jobs"]
    client.wait("message", lambda e: e["data"]["type"] == "jobs_snapshot")
    assert notify_progress(stack, "after") == 1
    after = wait_job(client, "after")
    assert after["epoch"] != old_epoch and after["offset"] == 1
    assert progress_ids(client) == ["a0", "after"]
