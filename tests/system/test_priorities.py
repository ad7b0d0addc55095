"""Control requests go ahead of poll answers (docs/PROTOCOL.md, "Priorities").

Real hub, notifier and gateway, 500 clients. At the hub's ROUTER (spoken to
as a gateway worker speaks: one batch of requests, batched replies), while a
backend publishes steadily through the notifier, control requests queued
behind a round of 500 poll answers are answered before all of them; over
HTTP, a status request that reaches a gateway worker right behind 500 polls
is answered before the round of their answers is written out. Order is
what is asserted, never time.
"""

import asyncio
import itertools
import json
import threading

import psutil
import pytest
import zmq

from benchmarks.httpclient import Connection, open_many
from services import protocol
from services.notifier.client import Publisher
from tests.stack import wait_for

CLIENTS = 500
CHANNEL = "prio"


@pytest.fixture
def bridge(stack_factory):
    # One address opens 500 clients: the per-address limits exist to refuse that.
    return stack_factory({"BRIDGE_HANDSHAKE_RATE": "0", "BRIDGE_SEND_RATE": "0"},
                         services=("hub", "notifier", "gateway"))


@pytest.fixture
def steady_publish(bridge):
    """A backend publishing to CHANNEL through the notifier, 100 messages a second, until the test ends."""
    stop = threading.Event()
    publisher = Publisher(environ=bridge.env, timeout=5)

    def run():
        n = 0
        while not stop.wait(0.01):
            n += 1
            publisher.broadcast({"type": "tick", "n": n}, channel=CHANNEL)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield publisher
    stop.set()
    thread.join(10)
    publisher.close()


class Gateway:
    """A DEALER at the hub's ROUTER that sends requests in batches, as a gateway worker does."""

    def __init__(self, endpoint):
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.MAXMSGSIZE, protocol.MAX_REPLY_BYTES)
        self.sock.connect(endpoint)
        self.ids = itertools.count(1)

    def send(self, requests):
        """Send ``[(op, fields), ...]`` as one message; returns their ids in order."""
        ids, packed = [], []
        for op, fields in requests:
            ids.append(next(self.ids))
            packed.append(protocol.encode_request(op, ids[-1], **fields)[1])
        protocol.send_frames(self.sock, (protocol.TAG, protocol.payload_of(packed)))
        return ids

    def replies(self, ids, timeout=20.0):
        """The replies to ``ids`` in the order they arrived (others are skipped)."""
        wanted, got = set(ids), []
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        while len(got) < len(wanted):
            assert poller.poll(timeout * 1000), f"{len(wanted) - len(got)} replies missing"
            for reply in protocol.decode_replies(self.sock.recv_multipart()):
                if reply["id"] in wanted:
                    got.append(reply)
        return got

    def call(self, requests):
        """Send and wait: the replies in the order of ``requests``."""
        ids = self.send(requests)
        by_id = {r["id"]: r for r in self.replies(ids)}
        return [by_id[i] for i in ids]

    def close(self):
        self.sock.close()


@pytest.fixture
def gateway(bridge):
    gw = Gateway(bridge.env["BRIDGE_HUB_RPC"])
    yield gw
    gw.close()


def _clients(gateway, count):
    hello = gateway.call([(protocol.OP_HANDSHAKE, {"client_type": "lightroom", "protocol_version": "1.0"})] * count)
    ids = [r["client_id"] for r in hello]
    subscribe = {"type": "subscribe", "channels": [CHANNEL]}
    assert all(r["ok"] for r in gateway.call([(protocol.OP_SEND, {"client_id": c, "message": subscribe}) for c in ids]))
    return ids


def test_control_replies_leave_the_hub_ahead_of_the_poll_round_queued_before_them(bridge, gateway, steady_publish):
    clients = _clients(gateway, CLIENTS)
    wait_for(lambda: steady_publish.sent > 20, message="the backend publishing")
    acked = {c: 0 for c in clients}
    for _ in range(3):
        # A publish first: every client has it queued when its poll is read, so every poll of the round is
        # answered in the turn that reads the batch, and the control requests after them come last.
        marker = [(protocol.OP_PUBLISH, {"target": "channel", "to": CHANNEL, "message": {"type": "marker"}})]
        polls = [(protocol.OP_POLL, {"client_id": c, "wait": 5, "ack": acked[c]}) for c in clients]
        control = [
            (protocol.OP_STATUS, {}),
            (protocol.OP_SEND, {"client_id": clients[0], "message": {"type": "ping"}}),
            (protocol.OP_PUBLISH, {"target": "channel", "to": CHANNEL, "message": {"type": "operator"}}),
            # A client's own order holds: its ack in the poll above is applied before this, sent after it.
            (protocol.OP_ACK, {"client_id": clients[-1]}),
        ]
        ids = gateway.send(marker + polls + control)
        poll_ids, control_ids = ids[1:CLIENTS + 1], ids[:1] + ids[CLIENTS + 1:]
        arrived = gateway.replies(ids)
        order = [r["id"] for r in arrived]
        answers = {r["id"]: r for r in arrived}
        assert all(answers[i]["ok"] and answers[i]["messages"] for i in poll_ids)  # a real round, queued first
        first_poll = min(order.index(i) for i in poll_ids)
        # Every control reply ahead of every poll answer. Among themselves they may change places: a request
        # of a client that polled earlier in the batch (the send, the ack) is handled after that poll.
        assert sorted(order.index(i) for i in control_ids) == list(range(len(control_ids))), (
            f"control replies at {[order.index(i) for i in control_ids]} of {len(order)}; the first poll "
            f"answer at {first_poll}")
        assert answers[control_ids[-1]]["acked"] == acked[clients[-1]]
        for client, i in zip(clients, poll_ids):
            acked[client] = answers[i]["messages"][-1]["seq"]


@pytest.fixture
def one_worker_bridge(stack_factory):
    return stack_factory({"BRIDGE_HANDSHAKE_RATE": "0", "BRIDGE_SEND_RATE": "0", "BRIDGE_GATEWAY_WORKERS": "1"},
                         services=("hub", "notifier", "gateway"))


def test_over_http_a_status_request_is_answered_before_the_round_of_poll_answers_ahead_of_it(one_worker_bridge):
    """500 polls, each with a message waiting, then a status request reach a paused gateway worker
    (SIGSTOP); resumed, it sends them to the hub as one batch, the polls first. The status answer is written
    before the round of poll answers (on main it came after all 500)."""
    bridge = one_worker_bridge
    gateway = Gateway(bridge.env["BRIDGE_HUB_RPC"])
    try:
        clients = _clients(gateway, CLIENTS)
        order = asyncio.run(_round_behind_a_paused_worker(bridge, gateway, clients))
    finally:
        gateway.close()
    assert order.count("poll") == CLIENTS and order.count("status") == 1
    between = order.index("status")
    assert between < CLIENTS, f"the status answer came after {between} of the {CLIENTS} poll answers ahead of it"


async def _round_behind_a_paused_worker(bridge, gateway, clients):
    worker = psutil.Process(bridge.procs["gateway"].pid).children()[0]
    conns = await open_many("127.0.0.1", bridge.http_port, len(clients))
    control = await Connection("127.0.0.1", bridge.http_port).open()
    read = []

    async def poll(conn, client_id, record):
        status, _, body = await conn.request(b"GET", b"/ws/poll?client_id=%s&wait=20" % client_id.encode(),
                                             timeout=30)
        assert status == 200, body[:300]
        if record:
            assert json.loads(body)["messages"]
            read.append("poll")

    async def status():
        code, _, body = await control.request(b"GET", b"/ws/status", timeout=30)
        assert code == 200, body[:300]
        read.append("status")

    async def written(conn):
        while conn.proto.transport.get_write_buffer_size():
            await asyncio.sleep(0.001)

    try:
        # Drain what the handshake and subscribe queued, then queue one message for everyone.
        await asyncio.gather(*(poll(c, cid, False) for c, cid in zip(conns, clients)))
        message = {"type": "m", "data": "x" * 16384}
        gateway.call([(protocol.OP_PUBLISH, {"target": "channel", "to": CHANNEL, "message": message})])
        worker.suspend()  # SIGSTOP; resumed within milliseconds, well inside the link's heartbeat timeout
        try:
            polls = [asyncio.create_task(poll(c, cid, True)) for c, cid in zip(conns, clients)]
            await asyncio.sleep(0)
            asking = asyncio.create_task(status())
            await asyncio.sleep(0)
            await asyncio.wait_for(asyncio.gather(*(written(c) for c in [*conns, control])), 10)
        finally:
            worker.resume()
        await asyncio.wait_for(asyncio.gather(asking, *polls), 30)
    finally:
        control.close()
        for c in conns:
            c.close()
    return read
