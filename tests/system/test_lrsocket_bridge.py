"""The bridge side of LrSocket push (/ws/lrsocket) against the real gateway (2 workers) and hub.

A plain TCP listener on 127.0.0.1 plays the plug-in's receive-mode LrSocket:
the bridge must connect to it only after a valid announcement, send a probe,
push only after the probe is acknowledged over HTTP, and hand the session
back to long-poll on any doubt with nothing lost or repeated. The Lua plug-in
under the stand-in runs against the same services in test_lrsocket_plugin.py.
"""

import json
import select
import socket

import pytest

from tests.stack import Stack, wait_for

QUEUE = 50


class Listener:
    """A receive-mode LrSocket stand-in in Python: accepts connections and reads JSON lines."""

    def __init__(self):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(4)
        self.port = self.server.getsockname()[1]
        self.conn = None
        self.peer = None
        self.buffer = b""

    def pending(self, timeout=0.0):
        """True when a connection waits to be accepted."""
        return bool(select.select([self.server], [], [], timeout)[0])

    def accept(self, timeout=5.0):
        assert self.pending(timeout), "the bridge did not connect"
        self.conn, self.peer = self.server.accept()
        return self.conn

    def line(self, timeout=5.0):
        """The next JSON line, or None at EOF."""
        while b"\n" not in self.buffer:
            ready = select.select([self.conn], [], [], timeout)[0]
            assert ready, "no line in time"
            data = self.conn.recv(65536)
            if not data:
                return None
            self.buffer += data
        raw, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(raw)

    def close(self):
        for s in (self.conn, self.server):
            if s is not None:
                s.close()


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("lrsocket"), {
        "BRIDGE_GATEWAY_WORKERS": "2", "BRIDGE_QUEUE_SIZE": str(QUEUE), "BRIDGE_POLL_MAX_WAIT": "3",
    })
    stack.start("hub", "gateway").wait_ready()
    yield stack
    stack.stop_all()


@pytest.fixture
def listener():
    made = []

    def make():
        made.append(Listener())
        return made[-1]

    yield make
    for item in made:
        item.close()


def session(api):
    r = api.post("/ws/handshake", {"client_type": "lightroom", "protocol_version": "1.0"})
    assert r.status == 200, r
    client_id, secret = r.json["client_id"], r.json["client_secret"]
    r = api.get(f"/ws/poll?client_id={client_id}&ack=1", headers={"X-Client-Secret": secret})
    assert r.status == 200
    return client_id, secret


def call(api, path, body, secret):
    return api.post(path, body, headers={"X-Client-Secret": secret} if secret else None)


def send_items(api, client_id, first, count):
    for n in range(first, first + count):
        assert api.post(f"/ws/send/{client_id}", {"message": {"type": "item", "n": n}}).status == 200


def prove(api, lis, client_id, secret):
    """Announce, read the probe, acknowledge it; returns the probe line."""
    r = call(api, "/ws/lrsocket", {"client_id": client_id, "port": lis.port}, secret)
    assert r.status == 200 and r.json["probe_sent"], r
    lis.accept()
    probe = lis.line()
    assert probe["type"] == "lrsocket_probe" and probe["port"] == lis.port
    r = call(api, "/ws/lrsocket/probe", {"client_id": client_id, "port": lis.port, "probe": probe["probe"]}, secret)
    assert r.status == 200, r
    return probe


def entry(api, client_id):
    return next(c for c in api.get("/ws/clients").json["clients"] if c["id"] == client_id)


def test_pushed_only_after_the_probe_is_acknowledged_then_line_per_message(api, listener):
    client_id, secret = session(api)
    lis = listener()
    r = call(api, "/ws/lrsocket", {"client_id": client_id, "port": lis.port}, secret)
    assert r.status == 200
    lis.accept()
    assert lis.peer[0] == "127.0.0.1"
    probe = lis.line()
    send_items(api, client_id, 0, 2)  # before the proof: the long-poll still owns the session
    assert select.select([lis.conn], [], [], 0.3)[0] == []
    polled = api.get(f"/ws/poll?client_id={client_id}&ack=1", headers={"X-Client-Secret": secret}).json
    assert [m["n"] for m in polled["messages"]] == [0, 1]
    r = call(api, "/ws/lrsocket/probe", {"client_id": client_id, "port": lis.port, "probe": probe["probe"]}, secret)
    assert r.status == 200
    # the stream resumes after the last ack: the two polled but unacked messages come again (the plug-in skips
    # them by seq), then the new ones, one line each
    send_items(api, client_id, 2, 3)
    lines = [lis.line() for _ in range(5)]
    assert [m["seq"] for m in lines] == [2, 3, 4, 5, 6] and [m["n"] for m in lines] == [0, 1, 2, 3, 4]
    wait_for(lambda: entry(api, client_id)["transport"] == "lrsocket", message="transport lrsocket")
    r = call(api, "/ws/lrsocket/ack", {"client_id": client_id, "seq": 6}, secret)
    assert r.status == 200 and r.json["pushing"] is True and r.json["acked"] == 6


def test_no_probe_ack_in_two_seconds_closes_the_socket_and_the_long_poll_keeps_everything(api, listener):
    client_id, secret = session(api)
    lis = listener()
    assert call(api, "/ws/lrsocket", {"client_id": client_id, "port": lis.port}, secret).status == 200
    lis.accept()
    probe = lis.line()
    send_items(api, client_id, 0, 3)
    assert lis.line(timeout=5) is None  # the bridge gave up: EOF, nothing pushed
    r = call(api, "/ws/lrsocket/probe", {"client_id": client_id, "port": lis.port, "probe": probe["probe"]}, secret)
    assert r.status == 409 and r.json["code"] == "not_announced"
    polled = api.get(f"/ws/poll?client_id={client_id}&ack=1", headers={"X-Client-Secret": secret}).json
    assert [m["n"] for m in polled["messages"]] == [0, 1, 2] and polled["dropped"] == 0
    assert call(api, "/ws/lrsocket/ack", {"client_id": client_id}, secret).json["pushing"] is False


def test_a_poll_takes_the_session_back_nothing_lost_or_repeated(api, listener):
    client_id, secret = session(api)
    lis = listener()
    prove(api, lis, client_id, secret)
    send_items(api, client_id, 0, 4)
    got = [lis.line() for _ in range(4)]
    assert [m["n"] for m in got] == [0, 1, 2, 3]
    last = got[-1]["seq"]
    # the plug-in doubts its socket and long-polls from its last processed seq: the bridge lets go of the socket
    polled = api.get(f"/ws/poll?client_id={client_id}&ack={last}", headers={"X-Client-Secret": secret}).json
    assert polled["messages"] == [] and polled["dropped"] == 0
    assert lis.line() is None
    send_items(api, client_id, 4, 2)
    polled = api.get(f"/ws/poll?client_id={client_id}&ack={last}", headers={"X-Client-Secret": secret}).json
    assert [m["n"] for m in polled["messages"]] == [4, 5] and polled["messages"][0]["seq"] == last + 1
    assert call(api, "/ws/lrsocket/ack", {"client_id": client_id}, secret).json["pushing"] is False


def test_the_plugin_closing_its_socket_ends_the_push(api, listener):
    client_id, secret = session(api)
    lis = listener()
    prove(api, lis, client_id, secret)
    wait_for(lambda: call(api, "/ws/lrsocket/ack", {"client_id": client_id}, secret).json["pushing"],
             message="pushing")
    wait_for(lambda: entry(api, client_id)["transport"] == "lrsocket", message="attached")
    lis.conn.close()
    lis.conn = None
    wait_for(lambda: not call(api, "/ws/lrsocket/ack", {"client_id": client_id}, secret).json["pushing"],
             message="the bridge noticed the closed socket")
    send_items(api, client_id, 0, 2)
    polled = api.get(f"/ws/poll?client_id={client_id}&ack=1", headers={"X-Client-Secret": secret}).json
    assert [m["n"] for m in polled["messages"]] == [0, 1]


def test_pushed_messages_not_acknowledged_within_a_hold_end_the_push(api, listener):
    client_id, secret = session(api)
    lis = listener()
    prove(api, lis, client_id, secret)
    send_items(api, client_id, 0, 2)
    assert [lis.line()["n"] for _ in range(2)] == [0, 1]
    # never acked: within two holds (3 s here) the bridge doubts and lets go
    assert lis.line(timeout=15) is None
    assert call(api, "/ws/lrsocket/ack", {"client_id": client_id}, secret).json["pushing"] is False
    polled = api.get(f"/ws/poll?client_id={client_id}&ack=1", headers={"X-Client-Secret": secret}).json
    assert [m["n"] for m in polled["messages"]] == [0, 1]


def test_overflow_is_reported_as_a_line_before_the_next_messages(api, listener):
    client_id, secret = session(api)
    lis = listener()
    probe = None
    r = call(api, "/ws/lrsocket", {"client_id": client_id, "port": lis.port}, secret)
    assert r.status == 200
    lis.accept()
    probe = lis.line()
    send_items(api, client_id, 0, QUEUE + 5)  # the queue (50) gives up the 5 oldest before any reader has them
    r = call(api, "/ws/lrsocket/probe", {"client_id": client_id, "port": lis.port, "probe": probe["probe"]}, secret)
    assert r.status == 200
    first = lis.line()
    assert first == {"type": "messages_dropped", "count": 5}
    got = [lis.line() for _ in range(QUEUE)]
    assert [m["n"] for m in got] == list(range(5, QUEUE + 5))


def test_hostile_announcements_are_refused_with_a_clear_error(api, listener):
    client_id, secret = session(api)
    lis = listener()
    cases = [
        ({"client_id": client_id, "port": lis.port}, None, 401, "secret_required", "client_secret"),
        ({"client_id": client_id, "port": lis.port, "host": "10.0.0.1"}, secret, 400, "bad_request", "host"),
        ({"client_id": client_id, "port": lis.port, "host": "localhost"}, secret, 400, "bad_request", "host"),
        ({"client_id": client_id, "port": 10 ** 30}, secret, 400, "bad_request", "port"),
        ({"client_id": client_id, "port": 65536}, secret, 400, "bad_request", "port"),
        ({"client_id": client_id, "port": 0}, secret, 400, "bad_request", "port"),
        ({"client_id": client_id, "port": "5100"}, secret, 400, "bad_request", "port"),
        ({"client_id": client_id, "port": lis.port}, "not-the-secret", 404, "unknown_client", "client_id"),
    ]
    for body, given, status, code, field in cases:
        r = call(api, "/ws/lrsocket", body, given)
        assert (r.status, r.json["code"], r.json["field"]) == (status, code, field), (body, r)
        assert r.json["success"] is False and r.json["error"]
    assert not lis.pending(0.2)
    # another port than announced, in the probe ack
    probe = prove_partly(api, lis, client_id, secret)
    r = call(api, "/ws/lrsocket/probe", {"client_id": client_id, "port": lis.port + 1, "probe": probe}, secret)
    assert (r.status, r.json["field"]) == (400, "port"), r
    r = call(api, "/ws/lrsocket/probe", {"client_id": client_id, "port": lis.port, "probe": "x" * 32}, secret)
    assert (r.status, r.json["field"]) == (400, "probe"), r
    r = call(api, "/ws/lrsocket/probe", {"client_id": client_id, "port": lis.port, "probe": probe}, None)
    assert (r.status, r.json["code"]) == (401, "secret_required")


def prove_partly(api, lis, client_id, secret):
    assert call(api, "/ws/lrsocket", {"client_id": client_id, "port": lis.port}, secret).status == 200
    lis.accept()
    return lis.line()["probe"]


def test_a_session_that_did_not_announce_cannot_make_the_bridge_connect(api, listener):
    client_id, secret = session(api)
    target = listener()
    r = call(api, "/ws/lrsocket/probe", {"client_id": client_id, "port": target.port, "probe": "a" * 32}, secret)
    assert (r.status, r.json["code"]) == (409, "not_announced")
    r = call(api, "/ws/lrsocket/ack", {"client_id": client_id, "seq": 1}, secret)
    assert r.status == 200 and r.json["pushing"] is False
    # another session announcing its own port is connected to at once; the target never is
    other_id, other_secret = session(api)
    mine = listener()
    prove(api, mine, other_id, other_secret)
    assert not target.pending(0.2)


def test_a_session_announces_at_most_once_per_probe_period(api, listener):
    client_id, secret = session(api)
    first, second = listener(), listener()
    assert call(api, "/ws/lrsocket", {"client_id": client_id, "port": first.port}, secret).status == 200
    r = call(api, "/ws/lrsocket", {"client_id": client_id, "port": second.port}, secret)
    assert (r.status, r.json["code"]) == (429, "rate_limited") and int(r.headers["retry-after"]) >= 1, r
    assert not second.pending(0.2)


def test_the_bridge_never_opens_a_second_connection_to_a_port_it_holds(api, listener):
    client_id, secret = session(api)
    lis = listener()
    prove(api, lis, client_id, secret)
    wait_for(lambda: entry(api, client_id)["transport"] == "lrsocket", message="attached")
    for who, given in ((client_id, secret), session(api)):
        r = call(api, "/ws/lrsocket", {"client_id": who, "port": lis.port}, given)
        assert (r.status, r.json["code"]) == (409, "port_in_use"), r
    assert not lis.pending(0.2)


def test_nothing_listening_on_the_announced_port_is_a_409(api):
    client_id, secret = session(api)
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # bound then closed: nothing listens there
    r = call(api, "/ws/lrsocket", {"client_id": client_id, "port": port}, secret)
    assert (r.status, r.json["code"], r.json["field"]) == (409, "push_unreachable", "port"), r
