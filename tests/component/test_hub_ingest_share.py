"""The hub's event ingest gives way to delivery (docs/PROTOCOL.md rule 14a): a notifier batch is split, its
tail kept with its own stream position, and a turn stops reading once delivery waits."""

import pytest

from services import protocol
from services.hub.config import HubConfig
from services.hub.requests import PollRequest
from services.hub.server import HubServer
from tests.stack import free_port

EPOCH = "00112233aabbccdd"


@pytest.fixture
def server():
    ports = [free_port() for _ in range(4)]
    hub = HubServer(HubConfig(
        rpc_endpoint=f"tcp://127.0.0.1:{ports[0]}", events_endpoint=f"tcp://127.0.0.1:{ports[1]}",
        client_events_endpoint=f"tcp://127.0.0.1:{ports[2]}", notifier_rpc_endpoint=f"tcp://127.0.0.1:{ports[3]}",
        ingest_slice=50, queue_size=100, poll_batch=1000,
    ))
    yield hub
    hub.held.clear()
    hub.held_polls.clear()
    hub.close()
    hub.hub.store.close()


def _batch(count, first=1):
    payloads = [protocol.encode_ingest({"target": "channel", "to": "c", "message": {"type": "e", "n": i}})[1]
                for i in range(first, first + count)]
    return protocol.encode_stream_run(protocol.TOPIC_PUBLISH, payloads, EPOCH, first)


def _client(server):
    session = server.hub.create_session("lightroom")
    server.hub.subscribe(session, ["c"])
    return session


def test_a_batch_is_applied_a_slice_at_a_time_and_the_position_follows_what_was_applied(server):
    session = _client(server)
    assert server.handle_event(_batch(1000)) == 50
    assert server.stream.positions[EPOCH] == 50 and server.hub.stats["published"] == 50
    server._ingest(server.events, server.handle_event)  # nobody waits: the whole tail in this turn
    assert server.leftover is None
    assert server.stream.positions[EPOCH] == 1000 and server.hub.stats["published"] == 1000
    assert session.next_seq - 1 == 1001  # connection_established, then every event once
    assert session.dropped_total == 1000 - 99  # the queue keeps 100, every other one counted


def test_a_held_poll_answer_stops_the_ingest_after_one_slice(server):
    session = _client(server)
    server._dispatch(b"peer", protocol.check_request(
        {"op": protocol.OP_POLL, "id": 1, "client_id": session.client_id, "wait": 0}))
    assert len(server.held_polls) == 1
    server.handle_event(_batch(1000))
    server._ingest(server.events, server.handle_event)
    # 50 from the first slice, then one more slice: the answer is made already, reading on only delays it
    assert server.stream.positions[EPOCH] == 100 and server.hub.stats["published"] == 100
    assert server.leftover is not None
    server._release()  # the answer goes out; the next turn reads on
    server._ingest(server.events, server.handle_event)
    assert server.stream.positions[EPOCH] == 1000 and server.leftover is None


def test_a_parked_poll_with_something_to_deliver_gets_one_answers_worth_first(server):
    session = _client(server)
    server.hub.poll(session, PollRequest(b"peer", 1, wait=10.0))  # takes the welcome message
    server.hub.poll(session, PollRequest(b"peer", 2, wait=10.0))  # parks
    assert session.parked is not None
    server.handle_event(_batch(1000))
    server._ingest(server.events, server.handle_event)
    # 50 from the first slice, then until min(BRIDGE_POLL_BATCH, BRIDGE_QUEUE_SIZE) = 100 are read: a full answer
    assert server.stream.positions[EPOCH] == 150 and server.hub.stats["published"] == 150
    assert server.hub.ready == {session}


def test_a_duplicate_tail_is_skipped_and_a_gap_is_left_to_the_replay(server):
    _client(server)
    server.handle_event(_batch(100))
    server._ingest(server.events, server.handle_event)
    assert server.stream.positions[EPOCH] == 100
    server.handle_event(_batch(120, first=41))  # 41-100 seen already: only 101-160 are new
    server._ingest(server.events, server.handle_event)
    assert server.stream.positions[EPOCH] == 160 and server.hub.stats["published"] == 160
    server.handle_event(_batch(200, first=300))  # a gap: nothing applied, the position stays
    server._ingest(server.events, server.handle_event)
    assert server.stream.positions[EPOCH] == 160 and server.hub.stats["published"] == 160
