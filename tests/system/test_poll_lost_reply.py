"""A long-poll answer lost on the way (the gateway gave up on it) still has its losses told (issue 13).

The hub is stopped under a parked poll: the gateway answers that poll 503
when the link's heartbeats go unanswered, and the hub, once resumed,
answers it all the same, with messages and a ``dropped`` count that nobody
receives. The client polls again from the same ``ack``: it gets the
messages again and must be told the losses again, so that what it received
plus what it was told adds up to what was published for it.
"""

import signal
import threading

import pytest

from services import protocol
from tests.stack import Stack, wait_for
from tests.system.transport_client import HubPublisher

QUEUE = 10


@pytest.fixture()
def stack(tmp_path):
    stack = Stack(tmp_path, {"BRIDGE_GATEWAY_WORKERS": "1", "BRIDGE_QUEUE_SIZE": str(QUEUE)})
    stack.start("hub", "gateway").wait_ready()
    yield stack
    stack.stop_all()


def test_losses_told_in_a_reply_the_gateway_gave_up_on_are_told_again(stack):
    client_id = stack.handshake()
    first = stack.poll(client_id, wait=0, ack=1)
    assert first.status == 200 and first.json["messages"] == [], first
    answers = []
    poller = threading.Thread(target=lambda: answers.append(stack.poll(client_id, wait=20, ack=1)), daemon=True)
    poller.start()
    stack.wait_parked(client_id)
    total = 3 * QUEUE
    publisher = HubPublisher(stack)
    stack.signal("hub", signal.SIGSTOP)
    try:
        poller.join(15)
        assert answers and answers[0].status == 503, answers  # the gateway gave up on the parked poll
        events = [protocol.publish_event(protocol.TARGET_CLIENT, {"type": "item", "n": n}, client_id)
                  for n in range(total)]
        for n, event in enumerate(events):  # queued on the way to the stopped hub, read after the parked poll
            publisher.sock.send_multipart(protocol.encode_request(protocol.OP_PUBLISH, n + 1, **event))
    finally:
        stack.signal("hub", signal.SIGCONT)
    for _ in range(total):
        assert publisher.sock.poll(20_000), "the hub did not answer the publish requests in time"
        assert protocol.decode_reply(publisher.sock.recv_multipart())["ok"]
    publisher.close()
    # The hub answered the parked poll when the messages came (to nobody): it was told then.
    wait_for(lambda: not any(c["id"] == client_id and c["polling"] for c in stack.get("/ws/clients").json["clients"]),
             message="the parked poll answered")
    received, told, ack = [], 0, 1
    while len(received) + told < total:
        r = wait_for(lambda: (r := stack.poll(client_id, wait=1, ack=ack)).status == 200 and r, timeout=20,
                     message="a poll answered")
        told += r.json["dropped"]
        received += [m["n"] for m in r.json["messages"]]
        if not r.json["messages"] and not r.json["dropped"]:
            break
        ack = r.json["messages"][-1]["seq"] if r.json["messages"] else ack
    assert told == total - QUEUE, (told, received)
    assert received == list(range(total - QUEUE, total))
    assert stack.poll(client_id, wait=0, ack=ack).json["dropped"] == 0  # told once, never twice
    entry = next(c for c in stack.get("/ws/clients").json["clients"] if c["id"] == client_id)
    assert entry["dropped"] == total - QUEUE
