"""One hub loop turn handles a bounded amount of work, however the messages were packed."""

import zmq

from services import protocol
from services.hub import server
from services.hub.server import HubServer


def test_a_batch_counts_as_what_it_holds_toward_the_turns_budget():
    ctx = zmq.Context.instance()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    a.bind("inproc://drain-budget")
    b.connect("inproc://drain-budget")
    try:
        for i in range(3):
            a.send_multipart([b"publish", protocol.TAG, b"%d" % i])
        seen = []

        def handler(frames):
            seen.append(frames[2])
            return 3000  # as a batch of 3 000 events would

        HubServer._drain(None, b, handler)
        assert seen == [b"0", b"1"]  # 3 000, then 6 000 >= DRAIN_BUDGET: the turn ends
        assert server.DRAIN_BUDGET == 5000
        HubServer._drain(None, b, lambda frames: seen.append(frames[2]))  # None counts as one message
        assert seen == [b"0", b"1", b"2"]
    finally:
        a.close(linger=0)
        b.close(linger=0)
