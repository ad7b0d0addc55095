"""The plug-in's LrSocket push (TRANSPORT = 'lrsocket'), under real lua5.1 with the LrSocket stand-in,
against the real hub and gateway, with each of the stand-in's quirks switched on in turn.

The stand-in (tests/lua/lr_shim/LrSocket.lua) listens on 127.0.0.1 like the
SDK's; the gateway connects to it, probes, and pushes. What is checked: the
plug-in receives every message once, in order, over the socket; it falls back
to long-poll on any doubt and comes back to the socket later, nothing lost or
repeated; a socket timing out while unconnected causes no storm; a reload
leaves no socket or task behind and the old callbacks are ignored.
"""

import json
import os
import re
import shutil
import signal

import pytest

from tests.stack import wait_for
from tests.system.plugin_support import FAST, notify_progress, progress_ids
from tests.system.transport_client import HubPublisher

pytestmark = pytest.mark.skipif(not shutil.which("lua5.1"), reason="needs lua5.1: run `make system-deps`")

PUSH = dict(FAST, TRANSPORT="lrsocket", PUSH_RETRY_DELAY=1, PUSH_CHECK_INTERVAL=0.5, REQUEST_TIMEOUT=2)


@pytest.fixture
def bridge(stack_factory):
    return stack_factory(env={"BRIDGE_POLL_MAX_WAIT": "5"})


def start(lua_clients, stack, quirks=None, options=PUSH, deadline=90):
    return lua_clients(stack, options=options, deadline=deadline,
                       env={"DRIVER_LRSOCKET_QUIRKS": json.dumps(quirks or {})})


def transport_of(stack, client_id):
    for entry in stack.get("/ws/clients").json["clients"]:
        if entry["id"] == client_id:
            return entry["transport"], entry["connected"]
    return None, False


def wait_pushing(stack, client, timeout=20):
    wait_for(lambda: client.client_id and transport_of(stack, client.client_id) == ("lrsocket", True), timeout,
             interval=0.05, message="the bridge pushing over LrSocket\n" + client.describe())


def ask(stack, client, action, ev):
    """Run a driver command and return the event it answers with."""
    before = len(client.of(ev))
    client.command(stack, action)
    return client.wait(ev, count=before + 1)[-1]


def publish(stack, names):
    for name in names:
        assert notify_progress(stack, name) >= 1


def heard_exactly(client, names, timeout=20):
    wait_for(lambda: set(names) <= set(progress_ids(client)), timeout,
             message=f"{names} heard\n{client.describe()}")
    ids = progress_ids(client)
    assert sorted(ids) == sorted(set(ids)), ids  # each once
    return ids


QUIRKS = {
    "defaults": {},
    "send_never_connects": {"sendNeverConnects": True},  # macOS: the push needs no send-mode socket
    "second_client_unread": {"secondClientUnread": True},
}


@pytest.mark.parametrize("quirk", sorted(QUIRKS))
def test_the_plugin_receives_over_lrsocket(bridge, lua_clients, quirk):
    client = start(lua_clients, bridge, QUIRKS[quirk])
    wait_pushing(bridge, client)
    names = [f"p{n}" for n in range(20)]
    publish(bridge, names)
    assert heard_exactly(client, names) == names  # in order, once
    status = ask(bridge, client, "status", "status")["data"]
    assert status["transport"] == "lrsocket" and "pushes to port" in status["transportReason"]
    port = status["pushPort"]
    # the bridge holds that port: another announcement of it is refused, and the plug-in goes on receiving
    other = bridge.post("/ws/handshake", {"client_type": "x", "protocol_version": "1.0"}).json
    r = bridge.post("/ws/lrsocket", {"client_id": other["client_id"], "port": port},
                    headers={"X-Client-Secret": other["client_secret"]})
    assert (r.status, r.json["code"]) == (409, "port_in_use")
    publish(bridge, ["after"])
    heard_exactly(client, names + ["after"])
    stand_in = ask(bridge, client, "lrsocket", "lrsocket")
    assert stand_in["open"] == 1 and stand_in["stats"]["binds"] == 1 and stand_in["errors"] == []
    assert transport_of(bridge, client.client_id)[0] == "lrsocket"
    assert any("the bridge pushes to port" in line for line in client.log_lines())


def test_the_default_transport_is_longpoll_and_binds_no_socket(bridge, lua_clients):
    client = start(lua_clients, bridge, options=FAST)
    client.wait("connected")
    publish(bridge, ["a"])
    heard_exactly(client, ["a"])
    assert transport_of(bridge, client.client_id)[0] == "poll"
    status = ask(bridge, client, "status", "status")["data"]
    assert status["transport"] == "longpoll" and status["transportReason"] == "the transport setting is longpoll"
    assert ask(bridge, client, "lrsocket", "lrsocket")["stats"]["binds"] == 0


@pytest.mark.parametrize("quirk", ["defaults", "no_closed_on_peer_exit"])
def test_bridge_killed_and_restarted_back_to_longpoll_then_lrsocket(bridge, lua_clients, quirk):
    quirks = {"noClosedOnPeerExit": True} if quirk == "no_closed_on_peer_exit" else {}
    client = start(lua_clients, bridge, quirks)
    wait_pushing(bridge, client)
    publish(bridge, ["a", "b"])
    heard_exactly(client, ["a", "b"])
    client_id = client.client_id
    bridge.kill("gateway")
    wait_for(lambda: any("back to long-poll" in line for line in client.log_lines()), 20,
             message="the plug-in falling back\n" + client.describe())
    hub = HubPublisher(bridge)
    try:
        # queued while no gateway runs: delivered later, once
        hub.publish([{"type": "job_progress", "job_id": n, "progress": 1} for n in ("c", "d")],
                    target="client", to=client_id)
    finally:
        hub.close()
    bridge.start("gateway").wait_ready()
    heard_exactly(client, ["a", "b", "c", "d"])
    wait_pushing(bridge, client)
    publish(bridge, ["e", "f"])
    assert heard_exactly(client, list("abcdef")) == list("abcdef")
    assert client.client_id == client_id
    status = ask(bridge, client, "status", "status")["data"]
    assert status["pushFallbacks"] >= 1 and status["transport"] == "lrsocket"


def test_timeouts_while_unconnected_cause_no_storm(bridge, lua_clients):
    """The gateway stopped (SIGSTOP): the socket waits unconnected and times out every 0.2 s; the
    callbacks only note it and the monitor rebinds at most once per retry period (1 s here), even with
    the stand-in storming whenever reconnect() is called inside a callback."""
    client = start(lua_clients, bridge, {"timeout": 0.2, "stormOnReconnectInCallback": True})
    wait_pushing(bridge, client)
    before = ask(bridge, client, "lrsocket", "lrsocket")["stats"]
    group = bridge.procs["gateway"].pid  # the gateway's process group (started in a session of its own)
    os.killpg(group, signal.SIGSTOP)
    try:
        wait_for(lambda: sum("back to long-poll" in line for line in client.log_lines()) >= 3, 30,
                 message="three fall-backs while the gateway is stopped\n" + client.describe())
    finally:
        os.killpg(group, signal.SIGCONT)
    wait_pushing(bridge, client, timeout=30)
    # requests the stopped gateway took late may still make the plug-in fall back once more: wait until
    # it is on its socket again
    after = wait_for(lambda: (a := ask(bridge, client, "lrsocket", "lrsocket"))["open"] == 1 and a, 20,
                     interval=0.2, message="one socket open again\n" + client.describe())
    stats = after["stats"]
    assert stats["timeouts"] > before["timeouts"]  # the quirk did fire while unconnected
    assert stats["reconnectsInCallback"] == 0 and stats["reconnects"] == 0
    fallbacks = sum("back to long-poll" in line for line in client.log_lines())
    # one bind per attempt: the first, then one per fall-back, whatever number of timeouts fired
    assert stats["binds"] - before["binds"] <= fallbacks + 1, (stats, fallbacks)
    assert stats["timeouts"] - before["timeouts"] > stats["binds"] - before["binds"], stats
    assert after["open"] == 1 and after["errors"] == []
    publish(bridge, ["x"])
    heard_exactly(client, ["x"])


@pytest.mark.parametrize("held", [False, True], ids=["ports_freed", "ports_held_on_reload"])
def test_reload_leaves_no_socket_or_task_behind_and_old_callbacks_are_ignored(bridge, lua_clients, held):
    client = start(lua_clients, bridge, {"portsHeldOnReload": held})
    wait_pushing(bridge, client)
    publish(bridge, ["a"])
    heard_exactly(client, ["a"])
    tasks_before = ask(bridge, client, "lrsocket", "lrsocket")
    reloaded = ask(bridge, client, "reload", "reloaded")
    assert reloaded["old_sockets"] == 1 and reloaded["old_stale"] >= 2  # the late onMessage and onError
    wait_for(lambda: len(client.of("connected")) >= 2, 20, message="connected again")
    wait_pushing(bridge, client)
    publish(bridge, ["b"])
    heard_exactly(client, ["a", "b"])
    assert not [e for e in client.of("message") if e["data"].get("seq") == 999999]
    # the old instance's tasks end within a slice of its stop: then as many run as before the reload
    settled = wait_for(lambda: (a := ask(bridge, client, "lrsocket", "lrsocket"))["tasks"] == tasks_before["tasks"]
                       and a, 10, interval=0.2, message="the old instance's tasks ending\n" + client.describe())
    def kinds(names):
        return sorted(re.sub(r" \d+$", "", name) for name in names)
    assert kinds(settled["names"]) == kinds(tasks_before["names"])
    assert settled["open"] == 1 and settled["stats"]["closes"] == 1
    after = settled
    assert after["errors"] == []


def test_the_port_in_status_matches_a_listening_stand_in(bridge, lua_clients):
    client = start(lua_clients, bridge)
    wait_pushing(bridge, client)
    status = ask(bridge, client, "status", "status")["data"]
    assert re.search(r"port %d$" % status["pushPort"], status["transportReason"])
