"""Commands in the hub by plain calls (services/hub/commands.py): states, deadlines, waiters, bounds, the store."""

import itertools

import pytest

from services import protocol
from services.hub.config import HubConfig
from services.hub.handlers import Context, dispatch
from services.hub.hub import Hub
from services.hub.requests import PollRequest
from services.hub.store import SqliteStore
from services.protocol import ProtocolError


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def wall(self):
        return 1_700_000_000.0 + self.now


def make(store=None, **config):
    clock = Clock()
    replies = []
    ids = (f"client-{n}" for n in itertools.count(1))
    hub = Hub(HubConfig(**config), lambda *a: replies.append(a), clock=clock, wallclock=clock.wall,
              new_id=lambda: next(ids), store=store)
    return hub, clock, replies


def request(hub, op, peer=b"backend", req_id=1, **fields):
    req = protocol.check_request(dict(fields, op=op, id=req_id))
    return dispatch(hub, Context(peer, lambda event: None), req)


def call(hub, command_id="c1", to="client-1", timeout=10.0, wait=0, **extra):
    return request(hub, protocol.OP_CALL, command_id=command_id, target="client", to=to, action="echo",
                   params={"x": 1}, within=timeout, caller="tester", wait=wait, **extra)


def send(hub, session, message):
    return request(hub, protocol.OP_SEND, peer=b"gw", client_id=session.client_id, message=message)["response"]


def connected(hub):
    session = hub.create_session("lightroom")
    hub.poll(session, PollRequest(b"gw", 0, 0, None))
    hub.ack(session, 1)
    return session


def test_a_command_is_a_queued_message_and_its_result_answers_the_waiting_caller():
    hub, _, replies = make()
    session = connected(hub)
    assert call(hub, wait=5) is None  # parked until it ends
    fields = hub.poll(session, PollRequest(b"gw", 2, 0, 1))
    (msg,) = fields["messages"]
    assert msg["type"] == "command" and msg["command_id"] == "c1" and msg["action"] == "echo"
    assert msg["params"] == {"x": 1} and msg["seq"] == 2
    assert hub.commands.records["c1"]["state"] == "delivered"
    hub.poll(session, PollRequest(b"gw", 3, 5, 2))  # acknowledged: running
    assert hub.commands.records["c1"]["state"] == "running"
    ack = send(hub, session, {"type": "command_result", "command_id": "c1", "ok": True, "result": {"y": 2}})
    assert ack == {"type": "command_ack", "command_id": "c1", "state": "done"}
    (peer, req_id, answer), = [r for r in replies if r[0] == b"backend"]
    assert (peer, req_id) == (b"backend", 1)
    assert answer["command"]["state"] == "done" and answer["command"]["result"] == {"y": 2}
    # a repeated result changes nothing
    send(hub, session, {"type": "command_result", "command_id": "c1", "ok": False, "error": "late"})
    assert hub.commands.records["c1"]["state"] == "done"


def test_never_delivered_expires_and_leaves_the_queue():
    hub, clock, replies = make()
    session = connected(hub)
    call(hub, timeout=2)
    assert [seq for seq, _ in session.queue] == [2]
    clock.now += 2.01
    hub.expire()
    assert hub.commands.records["c1"]["state"] == "expired"
    assert list(session.queue) == []
    assert hub.poll(session, PollRequest(b"gw", 2, 0, 1))["messages"] == []


def test_delivered_without_answer_is_unknown_then_a_late_answer_is_kept():
    hub, clock, _ = make()
    session = connected(hub)
    call(hub, timeout=2)
    hub.poll(session, PollRequest(b"gw", 2, 0, 1))  # handed out, the answer may be lost
    clock.now += 2.5
    hub.expire()
    assert hub.commands.records["c1"]["state"] == "unknown"
    send(hub, session, {"type": "command_result", "command_id": "c1", "ok": True, "result": 1})
    view = request(hub, protocol.OP_COMMAND, command_id="c1")["command"]
    assert view["state"] == "done" and view["late"] is True and view["result"] == 1


def test_failure_progress_and_not_supported():
    hub, _, replies = make()
    session = connected(hub)
    call(hub, "c1", wait=5, progress=True)
    call(hub, "c2", req_id=2)
    send(hub, session, {"type": "command_progress", "command_id": "c1", "pct": 40, "text": "half"})
    pushed = [r for r in replies if r[0] == b"backend"]
    assert pushed[-1][2]["open"] is True and pushed[-1][2]["command"]["progress"] == {"pct": 40, "text": "half"}
    send(hub, session, {"type": "command_result", "command_id": "c1", "ok": False,
                        "error": {"code": "not_supported", "message": "no action echo"}})
    final = [r for r in replies if r[0] == b"backend"][-1][2]
    assert "open" not in final and final["command"]["state"] == "failed"
    assert final["command"]["error"] == {"code": "not_supported", "message": "no action echo"}
    with pytest.raises(ProtocolError) as ex:
        send(hub, session, {"type": "command_progress", "command_id": "c2", "pct": 140})
    assert ex.value.field == "pct"


def test_unknown_client_and_bounds():
    hub, _, _ = make(commands_per_client=2, commands_per_caller=3)
    with pytest.raises(ProtocolError) as ex:
        call(hub, to="nobody")
    assert ex.value.code == "unknown_client"
    a, b = connected(hub), connected(hub)
    call(hub, "c1", to=a.client_id)
    call(hub, "c2", to=a.client_id)
    with pytest.raises(ProtocolError) as ex:
        call(hub, "c3", to=a.client_id)
    assert ex.value.code == "too_many_commands"
    call(hub, "c3", to=b.client_id)
    with pytest.raises(ProtocolError) as ex:
        call(hub, "c4", to=b.client_id)
    assert ex.value.code == "too_many_commands" and ex.value.field == "caller"
    call(hub, "c1", to=b.client_id)  # an id already known: a wait on that command, nothing queued again
    assert len(b.queue) == 1
    with pytest.raises(ProtocolError) as ex:
        request(hub, protocol.OP_COMMAND, command_id="nope")
    assert ex.value.code == "unknown_command"


def test_another_client_cannot_answer_a_command():
    hub, _, _ = make()
    a, b = connected(hub), connected(hub)
    call(hub, to=a.client_id)
    with pytest.raises(ProtocolError) as ex:
        send(hub, b, {"type": "command_result", "command_id": "c1", "ok": True})
    assert ex.value.code == "unknown_command"


def test_finished_commands_are_kept_within_their_bounds():
    hub, _, _ = make(commands_keep=3)
    session = connected(hub)
    for n in range(6):
        call(hub, f"c{n}", to=session.client_id)
        send(hub, session, {"type": "command_result", "command_id": f"c{n}", "ok": True})
    assert sorted(hub.commands.records) == ["c3", "c4", "c5"]
    listing = request(hub, protocol.OP_COMMANDS)["commands"]
    assert [v["command_id"] for v in listing["recent"]] == ["c5", "c4", "c3"] and listing["pending"] == []


def test_records_survive_a_restart_and_deadlines_run_after_it(tmp_path):
    path = tmp_path / "hub.sqlite3"
    store = SqliteStore(path)
    hub, clock, _ = make(store=store)
    session = connected(hub)
    call(hub, "queued", timeout=5)
    call(hub, "handed", timeout=5)
    hub.poll(session, PollRequest(b"gw", 9, 0, 1))
    call(hub, "later", timeout=5)
    store.commit(hub.changes)
    store.db.close()  # a crash: nothing more written

    store2 = SqliteStore(path)
    hub2, clock2, _ = make(store=store2)
    clock2.now = clock.now
    hub2.restore(store2.load())
    assert {k: r["state"] for k, r in hub2.commands.records.items()} == {
        "queued": "delivered", "handed": "delivered", "later": "queued"}
    clock2.now += 6
    hub2.expire()
    states = {k: r["state"] for k, r in hub2.commands.records.items()}
    assert states == {"queued": "unknown", "handed": "unknown", "later": "expired"}
    assert [m["type"] for _, m in hub2.sessions[session.client_id].queue] == ["command", "command"]
    store2.commit(hub2.changes)
    store2.close()


def test_discard_takes_an_entry_out_of_the_middle_keyed_or_not():
    from services.hub.queues import MessageQueue
    queue = MessageQueue()
    for seq, message in enumerate([{"type": "a"}, {"type": "job_progress", "job_id": "j"}, {"type": "command"},
                                   {"type": "b"}], 1):
        queue.append((seq, message))
    assert queue.discard(3) and queue.discard(2)
    assert not queue.discard(3) and not queue.discard(9)
    assert [seq for seq, _ in queue] == [1, 4] and len(queue) == 2
    assert not queue.has_keyed()
