"""Backends call into the plug-in (issue 17): the real hub and gateway, the plug-in under lua5.1 and the SDK stand-in.

The plug-in is tests/lua/drivers/client_driver.lua, which registers the
commands ``echo`` (returns its params), ``fail`` (raises ``params.message``)
and ``slow`` (reports progress ``steps`` times); each run prints a
``command_ran`` event, so a test counts how often a command really ran.
Backends are the library of services/notifier/calls.py on their own DEALERs.
"""

import asyncio
import io
import shutil
import threading

import pytest

from services.cli.__main__ import main as cli
from services.notifier.calls import (
    AsyncCaller, Caller, CommandFailed, Expired, NoSuchClient, NotSupported, Unknown,
)
from tests.lua.lossy_proxy import LossyProxy
from tests.stack import wait_for
from tests.system.plugin_support import FAST

pytestmark = pytest.mark.skipif(not shutil.which("lua5.1"), reason="needs lua5.1: run `make system-deps`")


@pytest.fixture
def callers(stack_factory):
    """``make(stack, name)``: a blocking ``Caller`` on the stack's hub, closed at teardown."""
    made = []

    def make(stack, name="tests"):
        caller = Caller(stack.env["BRIDGE_HUB_RPC"], caller=name)
        made.append(caller)
        return caller

    yield make
    for caller in made:
        caller.close()


def runs(client, command_id):
    return [e for e in client.of("command_ran") if e["id"] == command_id]


def test_a_call_and_its_reply(stack, lua_clients, callers):
    client = lua_clients(stack, options=FAST)
    client_id = client.wait("connected")[0]["data"]["client_id"]
    caller = callers(stack, "photo-analysis")
    params = {"photos": [1, 2], "name": "é"}
    assert caller.call(client_id, "echo", params, timeout=20) == params
    # by client type too (the lightroom client heard from last)
    assert caller.call("lightroom", "echo", {"n": 2}, timeout=20) == {"n": 2}
    listing = stack.get("/ws/commands").json
    done = [c for c in listing["recent"] if c["caller"] == "photo-analysis"]
    assert [c["state"] for c in done] == ["done", "done"] and listing["pending"] == []
    assert all(c["client_id"] == client_id and c["action"] == "echo" and c["duration"] >= 0 for c in done)


def test_the_operator_route_and_the_cli(stack, lua_clients):
    client = lua_clients(stack, options=FAST)
    client_id = client.wait("connected")[0]["data"]["client_id"]
    r = stack.post(f"/ws/call/{client_id}", {"action": "echo", "params": {"a": 1}, "timeout": 20}, timeout=30)
    assert r.status == 200 and r.json["result"] == {"a": 1} and r.json["command"]["state"] == "done", r
    r = stack.post(f"/ws/call/{client_id}", {"action": "fail", "params": {"message": "no photo selected"}}, timeout=40)
    assert r.status == 422 and r.json["code"] == "command_failed" and r.json["error"] == "no photo selected", r
    r = stack.post(f"/ws/call/{client_id}", {"action": "nope"}, timeout=40)
    assert r.status == 422 and r.json["code"] == "not_supported", r
    r = stack.post("/ws/call/nobody-here", {"action": "echo"})
    assert r.status == 404 and r.json["code"] == "unknown_client", r
    r = stack.post(f"/ws/call/{client_id}", {"action": "bad action!"})
    assert r.status == 400 and r.json["field"] == "action", r
    r = stack.post(f"/ws/call/{client_id}", {"action": "echo", "timeout": 10_000})
    assert r.status == 400 and r.json["field"] == "timeout", r
    r = stack.get("/ws/commands/no-such-command")
    assert r.status == 404 and r.json["code"] == "unknown_command", r

    env = dict(stack.env)
    out = io.StringIO()
    assert cli(["call", client_id, "echo", '{"b": [1, 2]}', "--within", "20"], out=out, environ=env) == 0
    assert '"b"' in out.getvalue()
    out = io.StringIO()
    assert cli(["call", client_id, "fail", '{"message": "catalog busy"}'], out=out, environ=env) == 1
    assert "command_failed: catalog busy" in out.getvalue()
    out = io.StringIO()
    assert cli(["commands"], out=out, environ=env) == 0
    text = out.getvalue()
    assert "STATE" in text and "CALLER" in text and text.count("http") >= 4 and "failed" in text
    r = stack.get("/ws/status")
    assert r.json["status"]["commands"]["done"] == 2 and r.json["status"]["commands"]["failed"] == 3


def test_the_poll_answer_carrying_the_command_is_lost_and_it_still_runs_once(stack, lua_clients, callers):
    lost_one = threading.Event()

    def lose(request_line, answer):
        if request_line.startswith("GET /ws/poll") and b'"type":"command"' in answer and not lost_one.is_set():
            lost_one.set()
            return True
        return False

    proxy = LossyProxy(stack.http_port, lose).start()
    try:
        options = {"POLL_WAIT": 1, "POLL_TIMEOUT": 1.5, "RECONNECT_DELAY": 0.05, "RECONNECT_MAX_DELAY": 0.1}
        client = lua_clients(stack, base_url=proxy.base_url, options=options)
        client_id = client.wait("connected")[0]["data"]["client_id"]
        caller = callers(stack)
        command_id = caller.call(client_id, "echo", {"k": "v"}, timeout=30, wait=False)
        assert caller.result(command_id, timeout=30) == {"k": "v"}
        assert len(proxy.lost) == 1 and command_id.encode() in proxy.lost[0][1]
        assert len(runs(client, command_id)) == 1
        assert [m["data"]["command_id"] for m in client.of("message", "command")] == [command_id]
    finally:
        proxy.stop()


def test_no_plugin_connected_gives_expired_at_the_deadline(stack, callers):
    caller = callers(stack)
    with pytest.raises(NoSuchClient):
        caller.call("lightroom", "echo", {}, timeout=1)
    client_id = stack.handshake()  # a session, but nothing polls it
    with pytest.raises(Expired) as ex:
        caller.call(client_id, "echo", {}, timeout=1.0)
    command = stack.get(f"/ws/commands/{ex.value.command_id}").json["command"]
    assert command["state"] == "expired"
    # it left the queue: the client never gets it
    messages = stack.poll(client_id).json["messages"]
    assert [m for m in messages if m["type"] == "command"] == []


def test_the_plugin_raises_and_the_caller_gets_command_failed(stack, lua_clients, callers):
    client = lua_clients(stack, options=FAST)
    client_id = client.wait("connected")[0]["data"]["client_id"]
    caller = callers(stack)
    with pytest.raises(CommandFailed) as ex:
        caller.call(client_id, "fail", {"message": "the catalog is busy"}, timeout=20)
    assert str(ex.value) == "the catalog is busy" and ex.value.code == "command_failed"
    with pytest.raises(NotSupported):
        caller.call(client_id, "no_such_action", {}, timeout=20)


def test_hub_killed_with_commands_pending_every_caller_gets_a_definite_state(stack_factory, lua_clients, callers):
    stack = stack_factory(env={"BRIDGE_HUB_TIMEOUT": "1"})
    client = lua_clients(stack, options=FAST)
    client_id = client.wait("connected")[0]["data"]["client_id"]
    caller = callers(stack)
    outcomes = {}

    def one(n):
        try:
            outcomes[n] = ("result", caller.call(client_id, "slow", {"steps": 4, "pause": 0.5}, timeout=25,
                                                 command_id=f"killed-{n}"))
        except (Expired, Unknown, CommandFailed) as ex:
            outcomes[n] = (type(ex).__name__, ex.command)

    idle_id = stack.handshake()  # a session nothing polls: its command is still queued at the kill

    def queued():
        try:
            outcomes["queued"] = ("result", caller.call(idle_id, "echo", {}, timeout=4, command_id="killed-queued"))
        except (Expired, Unknown) as ex:
            outcomes["queued"] = (type(ex).__name__, ex.command)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(4)] + [threading.Thread(target=queued)]
    for t in threads:
        t.start()
    wait_for(lambda: len(client.of("command_ran")) >= 4, 15, message="the commands running")
    wait_for(lambda: stack.get("/ws/commands/killed-queued").status == 200, 10, message="the queued command")
    stack.kill("hub")
    stack.start("hub")
    for t in threads:
        t.join(60)
    # the deadline ran on across the restart: never delivered, so Expired, and its caller was told
    assert outcomes.pop("queued")[0] == "Expired"
    assert len(outcomes) == 4, outcomes
    listing = stack.get("/ws/commands").json
    states = {c["command_id"]: c["state"] for c in listing["recent"] + listing["pending"]}
    for n, (kind, value) in outcomes.items():
        state = states[f"killed-{n}"]
        assert state in ("done", "unknown"), (n, state)  # delivered before the kill: never "expired"
        assert (kind == "result") == (state == "done"), (n, kind, state)
        if kind == "result":
            assert value == {"steps": 4}
    # each ran once, the restart notwithstanding
    assert sorted(e["id"] for e in client.of("command_ran")) == sorted(f"killed-{n}" for n in range(4))


def test_100_concurrent_calls_from_3_backends_to_2_clients_each_get_their_own_reply(stack, lua_clients):
    clients = [lua_clients(stack, options=FAST) for _ in range(2)]
    ids = [c.wait("connected")[0]["data"]["client_id"] for c in clients]
    endpoint = stack.env["BRIDGE_HUB_RPC"]

    async def backend(name, numbers):
        async with AsyncCaller(endpoint, caller=name) as caller:
            return await asyncio.gather(*(
                caller.call(ids[n % 2], "echo", {"n": n, "from": name}, timeout=60) for n in numbers))

    async def main():
        return await asyncio.gather(*(backend(f"backend-{b}", range(b, 100, 3)) for b in range(3)))

    results = asyncio.run(main())
    for b, answers in enumerate(results):
        assert answers == [{"n": n, "from": f"backend-{b}"} for n in range(b, 100, 3)]
    ran = [e for c in clients for e in c.of("command_ran")]
    assert len(ran) == 100 and len({e["id"] for e in ran}) == 100
    assert len(clients[0].of("command_ran")) == 50 and len(clients[1].of("command_ran")) == 50


def test_a_long_command_reports_progress_and_is_fetched_later_by_id(stack, lua_clients, callers):
    client = lua_clients(stack, options=FAST)
    client_id = client.wait("connected")[0]["data"]["client_id"]
    caller = callers(stack)
    command_id = caller.call(client_id, "slow", {"steps": 4, "pause": 0.4}, timeout=30, wait=False)
    reports = []
    assert caller.result(command_id, timeout=30, progress=lambda pct, text: reports.append((pct, text))) == {"steps": 4}
    assert reports and reports[-1] == (100, "step 4")
    assert [pct for pct, _ in reports] == sorted(pct for pct, _ in reports)
    # and later still, by id: the outcome is kept
    command = caller.command(command_id)
    assert command["state"] == "done" and command["result"] == {"steps": 4} and command["progress"]["pct"] == 100
    assert len(runs(client, command_id)) == 1
