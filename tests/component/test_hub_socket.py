"""The hub process over a real DEALER socket: requests, garbage, client events."""

import msgpack
import pytest
import zmq

from services import protocol
from tests.stack import Stack, wait_for


@pytest.fixture
def hub(tmp_path):
    stack = Stack(tmp_path).start("hub")
    yield stack
    stack.stop_all()


@pytest.fixture
def dealer(hub):
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 5000)
    sock.connect(hub.env["BRIDGE_HUB_RPC"])
    yield sock
    sock.close()


def call(sock, op, req_id, **fields):
    sock.send_multipart(protocol.encode_request(op, req_id, **fields))
    return protocol.decode_reply(sock.recv_multipart())


def test_request_reply_and_typed_errors(dealer):
    rep = call(dealer, protocol.OP_HANDSHAKE, 1, client_type="script", protocol_version="1.0")
    assert rep["ok"] and rep["id"] == 1
    rep = call(dealer, protocol.OP_POLL, 2, client_id="nobody")
    assert (rep["ok"], rep["code"], rep["field"]) == (False, "unknown_client", "client_id")
    rep = call(dealer, "explode", 3)
    assert (rep["ok"], rep["code"]) == (False, "unknown_op")


def test_garbage_is_rejected_and_the_hub_keeps_answering(hub, dealer):
    garbage = [
        [b"\x00\x01\x02"],
        [protocol.TAG, b"\xc1\xc1"],
        [protocol.TAG, b"\xdd\xff\xff\xff\xff"],  # an array header claiming 2**32 elements
        [protocol.TAG, msgpack.packb({"op": "poll"})],  # no id
        [b"WRONG/1", msgpack.packb({"op": "status", "id": 5})],
        [protocol.TAG, msgpack.packb({"op": "status", "id": 5}), b"extra"],
    ]
    for frames in garbage:
        dealer.send_multipart(frames)
    rep = call(dealer, protocol.OP_STATUS, 6)
    assert rep["ok"] and rep["id"] == 6  # nothing answered the garbage; the next request works
    assert "rejected from peer" in wait_for(lambda: "rejected" in hub.output("hub") and hub.output("hub"))


def test_client_messages_are_published_to_backends(hub, dealer):
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, protocol.TOPIC_CLIENT)
    sub.connect(hub.env["BRIDGE_CLIENT_EVENTS"])
    try:
        cid = call(dealer, protocol.OP_HANDSHAKE, 1, client_type="lightroom", protocol_version="1.0")["client_id"]
        poller = zmq.Poller()
        poller.register(sub, zmq.POLLIN)
        # PUB/SUB joins asynchronously: send until the subscriber hears one (bounded).
        for n in range(100):
            rep = call(dealer, protocol.OP_SEND, 10 + n, client_id=cid,
                       message={"type": "job_progress", "job_id": "j", "progress": n})
            assert rep["response"]["type"] == "ack"
            if poller.poll(50):
                break
        topic, event = protocol.decode_event(sub.recv_multipart())
        assert topic == b"client.job_progress"
        assert event["client_id"] == cid and event["client_type"] == "lightroom"
        assert event["message"]["type"] == "job_progress" and event["timestamp"].endswith("Z")
    finally:
        sub.close()


def test_sigterm_exits_zero(hub):
    wait_for(lambda: "hub serving" in hub.output("hub"), message="the hub to start")
    assert hub.stop("hub") == 0
    assert "hub stopped" in hub.output("hub")


def _batch(requests):
    return [protocol.TAG, protocol.pack_batch([protocol.encode_request(op, i, **f)[1] for op, i, f in requests])]


def test_a_batch_is_answered_in_one_message_and_a_bad_item_alone(hub, dealer):
    dealer.send_multipart(_batch([
        (protocol.OP_HANDSHAKE, 1, {"client_type": "script", "protocol_version": "1.0"}),
        ("explode", 2, {}),
        (protocol.OP_STATUS, 3, {}),
    ]))
    replies = protocol.decode_replies(dealer.recv_multipart())
    assert [(r["id"], r["ok"]) for r in replies] == [(1, True), (2, False), (3, True)]
    assert replies[1]["code"] == "unknown_op"
    # Now a batching peer: two polls answered in the same turn come back as one message.
    cid = replies[0]["client_id"]
    other = call(dealer, protocol.OP_HANDSHAKE, 4, client_type="script", protocol_version="1.0")["client_id"]
    dealer.send_multipart(_batch([
        (protocol.OP_POLL, 5, {"client_id": cid, "wait": 5}), (protocol.OP_POLL, 6, {"client_id": other, "wait": 5}),
    ]))
    replies = protocol.decode_replies(dealer.recv_multipart())  # both have connection_established waiting
    assert sorted(r["id"] for r in replies) == [5, 6]


def test_a_peer_that_never_batches_gets_one_message_per_reply(hub, dealer):
    cids = [call(dealer, protocol.OP_HANDSHAKE, i, client_type="script", protocol_version="1.0")["client_id"]
            for i in (1, 2)]
    for i, cid in enumerate(cids, 10):  # pipelined: both land in the same hub turn
        dealer.send_multipart(protocol.encode_request(protocol.OP_POLL, i, client_id=cid, wait=5))
    assert [protocol.decode_reply(dealer.recv_multipart())["id"] for _ in cids] == [10, 11]


def test_a_control_request_read_with_polls_goes_first_unless_its_client_polled_before_it(hub, dealer):
    """docs/PROTOCOL.md rule 14a/14b: a status read in the same message as polls is handled before them (its
    counts do not have their deliveries yet); a client's ack after its own poll still waits for that poll."""
    cids = [call(dealer, protocol.OP_HANDSHAKE, i, client_type="script", protocol_version="1.0")["client_id"]
            for i in (1, 2, 3)]
    before = call(dealer, protocol.OP_STATUS, 4)["status"]["messages"]["delivered"]
    dealer.send_multipart(_batch([
        (protocol.OP_POLL, 10, {"client_id": cids[0], "wait": 0}),  # each takes its connection_established
        (protocol.OP_POLL, 11, {"client_id": cids[1], "wait": 0}),
        (protocol.OP_STATUS, 12, {}),
        (protocol.OP_POLL, 13, {"client_id": cids[2], "wait": 0, "ack": 0}),
        (protocol.OP_ACK, 14, {"client_id": cids[2], "seq": 1}),  # after its client's poll: stays after it
    ]))
    replies = {}
    while len(replies) < 5:
        for reply in protocol.decode_replies(dealer.recv_multipart()):
            replies[reply["id"]] = reply
    assert replies[12]["status"]["messages"]["delivered"] == before  # answered ahead of the three polls
    assert [m["seq"] for m in replies[13]["messages"]] == [1]  # the poll ran before the ack that forgets seq 1
    assert replies[14]["acked"] == 1
    assert call(dealer, protocol.OP_STATUS, 15)["status"]["messages"]["delivered"] == before + 3
