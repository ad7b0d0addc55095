"""The notifier's loop driven turn by turn, on real loopback sockets: nothing is lost before a hub subscribes."""

import threading
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


def request(dealer, frames, timeout=5.0):
    dealer.send_multipart(frames)
    assert dealer.poll(int(timeout * 1000)), "no answer"
    return dealer.recv_multipart()


def rpc_socket(ctx, server):
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(server.config.rpc_endpoint)
    return dealer


def turn_in_background(server, poller):
    """Run the loop in a thread (a request/reply test needs the notifier to answer while the test waits)."""
    def loop():
        while not server.stopping:
            server.run_once(poller)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def test_published_events_are_numbered_and_replayed_and_evicted_ones_reported_lost(ctx):
    server, poller = make_server(ctx, replay_size=5)
    sub = hub_socket(ctx, server)
    turn_until(server, poller, lambda: server.subscribed)
    sender = push(ctx, server.config.events_in, range(8))
    positions = []

    def enough():
        while sub.poll(0):
            topic, events, position = protocol.decode_stream(sub.recv_multipart())
            if topic == protocol.TOPIC_PUBLISH:
                positions.extend(range(position[1], position[1] + len(events)))
        return len(positions) >= 8

    turn_until(server, poller, enough)
    assert positions == list(range(1, 9))
    dealer = rpc_socket(ctx, server)
    thread = turn_in_background(server, poller)
    try:
        reply, events = protocol.decode_replay(request(dealer, protocol.encode_notifier_request(
            protocol.OP_REPLAY, 1, epoch=server.log.epoch, after=0)))
        assert reply["known"] and reply["lost"] == [[1, 3, "all", None]] and reply["first"] == 4
        assert [e["message"]["i"] for e in events] == [3, 4, 5, 6, 7] and reply["upto"] == 8 and not reply["more"]
        reply, events = protocol.decode_replay(request(dealer, protocol.encode_notifier_request(
            protocol.OP_REPLAY, 2, epoch="an-old-run", after=40)))
        assert not reply["known"] and reply["epoch"] == server.log.epoch and reply["head"] == 8 and events == []
        reply, _ = protocol.decode_notifier_reply(request(dealer, protocol.encode_notifier_request(protocol.OP_PING, 3)))
        assert reply["ok"] and reply["epoch"] == server.log.epoch
    finally:
        server.stopping = True
        thread.join(5)
    sender.close()
    sub.close()
    dealer.close()
    server.close()


def test_an_acknowledged_publish_is_numbered_and_a_bad_one_refused_alone(ctx):
    server, poller = make_server(ctx)
    dealer = rpc_socket(ctx, server)
    thread = turn_in_background(server, poller)
    good = protocol.encode_ingest(protocol.publish_event("all", {"type": "n", "i": 1}))[1]
    bad = protocol.encode_ingest(protocol.publish_event("all", {"type": "job_progress", "job_id": "j", "progress": 500}))[1]
    try:
        dealer.send_multipart(protocol.encode_notifier_request(protocol.OP_PUBLISH, 1, good))
        dealer.send_multipart(protocol.encode_notifier_request(protocol.OP_PUBLISH, 2, bad))
        dealer.send_multipart(protocol.encode_notifier_request(protocol.OP_PUBLISH, 3, good))
        answers = []
        while not any(a["ok"] and a["id"] == 3 for a in answers):
            assert dealer.poll(5000), answers
            answers.append(protocol.decode_notifier_reply(dealer.recv_multipart())[0])
        refused = [a for a in answers if not a["ok"]]
        assert [(a["id"], a["code"], a["field"]) for a in refused] == [(2, "bad_request", "progress")]
    finally:
        server.stopping = True
        thread.join(5)
    assert server.log.next_seq == 3 and len(server.outbox) == 2  # two numbered, held for a hub
    dealer.close()
    server.close()
