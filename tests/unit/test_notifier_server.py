"""The notifier's loop driven turn by turn, on real loopback sockets: nothing is lost before a hub subscribes."""

import time

import pytest
import zmq

from services import protocol
from services.notifier.config import NotifierConfig
from services.notifier.server import NotifierServer
from tests.stack import free_port


@pytest.fixture
def ctx():
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


def make_server(ctx, **overrides):
    config = NotifierConfig(
        events_in=f"tcp://127.0.0.1:{free_port()}", events_out=f"tcp://127.0.0.1:{free_port()}",
        rpc_endpoint=f"tcp://127.0.0.1:{free_port()}", status_interval=0, **overrides,
    )
    server = NotifierServer(config, context=ctx)
    poller = zmq.Poller()
    for sock in (server.out, server.ingest, server.samples, server.rpc):
        poller.register(sock, zmq.POLLIN)
    return server, poller


def turn_until(server, poller, condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        server.run_once(poller)


def push(ctx, endpoint, events):
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 2000)
    sock.connect(endpoint)
    for i in events:
        sock.send_multipart(protocol.encode_ingest(protocol.publish_event("all", {"type": "n", "i": i})))
    return sock


def hub_socket(ctx, server):
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, protocol.TOPIC_PUBLISH)
    sub.connect(server.config.events_out)
    return sub


def receive_all(server, poller, sub, count):
    got = []

    def enough():
        while sub.poll(0):
            topic, events, _ = protocol.decode_stream(sub.recv_multipart())
            if topic == protocol.TOPIC_PUBLISH:
                got.extend(event["message"]["i"] for event in events)
        return len(got) >= count

    turn_until(server, poller, enough)
    return got


def test_events_before_any_hub_are_held_then_delivered_in_order(ctx):
    server, poller = make_server(ctx)
    sender = push(ctx, server.config.events_in, range(50))
    turn_until(server, poller, lambda: server.stats["received"] == 50)
    assert len(server.outbox) == 50 and not server.subscribed and server.stats["forwarded"] == 0
    sub = hub_socket(ctx, server)
    assert receive_all(server, poller, sub, 50) == list(range(50))
    assert server.subscribed and len(server.outbox) == 0
    sender.close()
    sub.close()
    server.close()


def test_the_hold_is_bounded_and_counts_what_it_drops(ctx):
    server, poller = make_server(ctx, hold_size=10)
    sender = push(ctx, server.config.events_in, range(25))
    turn_until(server, poller, lambda: server.stats["received"] == 25)
    assert len(server.outbox) == 10 and server.outbox.overflowed == 15
    sub = hub_socket(ctx, server)
    assert receive_all(server, poller, sub, 10) == list(range(15, 25))
    sender.close()
    sub.close()
    server.close()


def test_a_hub_leaving_makes_the_notifier_hold_again(ctx):
    server, poller = make_server(ctx)
    sub = hub_socket(ctx, server)
    turn_until(server, poller, lambda: server.subscribed)
    sub.close()
    turn_until(server, poller, lambda: not server.subscribed)
    sender = push(ctx, server.config.events_in, [1, 2])
    turn_until(server, poller, lambda: server.stats["received"] == 2)
    assert len(server.outbox) == 2
    sender.close()
    server.close()


def test_bad_ingest_is_counted_not_fatal(ctx):
    server, poller = make_server(ctx)
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 2000)
    sock.connect(server.config.events_in)
    sock.send_multipart([b"junk"])
    sock.send_multipart([protocol.TAG, b"\x93\x01\x02\x03"])  # a msgpack array, not a map
    sock.send_multipart(protocol.encode_ingest({"target": "all", "message": {"type": "job_started"}}))
    turn_until(server, poller, lambda: server.stats["received"] == 3)
    assert server.stats["rejected"] == 3 and len(server.outbox) == 0
    sock.close()
    server.close()
