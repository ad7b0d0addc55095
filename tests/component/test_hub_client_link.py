"""The gateway's HubClient against a raw hub stand-in (a ROUTER on a loopback port): a dropped frame heals."""

import asyncio
import logging

import pytest
import zmq

from services import protocol
from services.gateway.hub_client import HubClient, HubUnavailable

LIMIT = 64 * 1024  # what this client accepts in the test; the real one takes protocol.MAX_REPLY_BYTES


class StandIn:
    """A ROUTER that answers what it is told to, from the test's own event loop."""

    def __init__(self):
        self.sock = zmq.Context.instance().socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"

    async def requests(self, count, timeout=5.0):
        """The next ``count`` requests as ``(peer, request map)``, batches unpacked."""
        out = []
        deadline = asyncio.get_running_loop().time() + timeout
        while len(out) < count:
            if self.sock.poll(0):
                frames = self.sock.recv_multipart()
                items, _ = protocol.decode_requests(frames[1:])
                out += [(frames[0], item) for item in items]
                continue
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"only {len(out)} of {count} requests reached the stand-in")
            await asyncio.sleep(0.005)
        return out

    def answer(self, peer, req_id, **fields):
        self.sock.send_multipart([peer] + protocol.encode_reply(req_id, **fields))

    def close(self):
        self.sock.close()


@pytest.fixture
def hub():
    stand_in = StandIn()
    yield stand_in
    stand_in.close()


def test_a_dropped_frame_fails_waiting_requests_at_once_and_a_fresh_socket_takes_over(hub, caplog):
    async def scenario():
        client = HubClient(hub.endpoint, timeout=10.0, max_reply_bytes=LIMIT)
        try:
            first = asyncio.ensure_future(client.request(protocol.OP_STATUS))
            second = asyncio.ensure_future(client.request(protocol.OP_CLIENTS))
            (peer, a), (_, b) = await hub.requests(2)
            hub.answer(peer, a["id"], status={"pad": "x" * (2 * LIMIT)})  # larger than the client accepts
            for waiting in (first, second):
                # Failed by the lost link at once, not by the 10 s timeout ("did not answer in time").
                with pytest.raises(HubUnavailable, match="went away"):
                    await asyncio.wait_for(waiting, 5)
            # A new socket (a new identity at the hub) answers the next request within a second or so.
            third = asyncio.ensure_future(client.request(protocol.OP_STATUS))
            (new_peer, c), = await hub.requests(1)
            assert new_peer != peer
            hub.answer(new_peer, c["id"], status={"ok": 1})
            reply = await asyncio.wait_for(third, 5)
            assert reply["status"] == {"ok": 1} and client.reconnects == 1
            # A reply at the limit itself crosses.
            fourth = asyncio.ensure_future(client.request(protocol.OP_STATUS))
            (_, d), = await hub.requests(1)
            n = LIMIT
            while len(protocol.encode_reply(d["id"], status="x" * n)[1]) > LIMIT:
                n -= 1
            hub.answer(new_peer, d["id"], status="x" * n)
            reply = await asyncio.wait_for(fourth, 5)
            assert len(protocol.encode_reply(d["id"], status=reply["status"])[1]) == LIMIT
            assert client.reconnects == 1
        finally:
            await client.close()

    with caplog.at_level(logging.WARNING, logger="services.gateway.hub_client"):
        asyncio.run(scenario())
    assert any("link to the hub" in r.getMessage() for r in caplog.records)


def test_a_request_larger_than_the_hub_accepts_is_refused_before_it_is_sent(hub):
    async def scenario():
        client = HubClient(hub.endpoint, timeout=5.0)
        try:
            from services.gateway.hub_client import HubError
            with pytest.raises(HubError) as ex:
                await client.request(protocol.OP_PUBLISH, target="all",
                                     message={"type": "big", "data": "x" * protocol.MAX_FRAME_BYTES})
            assert ex.value.code == "bad_request"
            assert client.reconnects == 0
        finally:
            await client.close()

    asyncio.run(scenario())


def test_the_hub_never_sends_a_reply_over_the_limit():
    """A batch of replies is cut at BATCH_BYTES; one reply alone is at most MAX_REPLY_BYTES (server rule)."""
    items = [b"x" * 700_000, b"y" * 700_000, b"z" * (protocol.MAX_REPLY_BYTES - 10)]
    runs = list(protocol.batches(items, protocol.BATCH_BYTES))
    assert [len(run) for run in runs] == [1, 1, 1]
    assert all(len(protocol.payload_of(run)) <= protocol.MAX_REPLY_BYTES for run in runs)
    assert protocol.BATCH_BYTES + 5 <= protocol.MAX_FRAME_BYTES < protocol.MAX_REPLY_BYTES


def test_the_hub_answers_a_reply_over_the_limit_with_an_error_instead_of_sending_it():
    from services.hub.config import HubConfig
    from services.hub.server import HubServer
    from tests.stack import free_port

    ports = [free_port() for _ in range(3)]
    server = HubServer(HubConfig(
        rpc_endpoint=f"tcp://127.0.0.1:{ports[0]}", events_endpoint=f"tcp://127.0.0.1:{ports[1]}",
        client_events_endpoint=f"tcp://127.0.0.1:{ports[2]}",
    ))
    try:
        server._send_reply(b"peer", 7, {"clients": ["x" * protocol.MAX_REPLY_BYTES]})
        server._send_reply(b"peer", 8, {"clients": ["x" * (protocol.MAX_REPLY_BYTES - 1024)]})
        (_, refused), (_, kept) = server.held
        refused = protocol.decode_replies([protocol.TAG, refused])[0]
        assert (refused["id"], refused["ok"], refused["code"]) == (7, False, "internal")
        assert len(kept) <= protocol.MAX_REPLY_BYTES and protocol.decode_replies([protocol.TAG, kept])[0]["ok"]
        assert server.hub.metrics.errors["reply_too_large"] == 1
    finally:
        server.held.clear()
        server.close()
        server.hub.store.close()
