"""An SSE reader across a hub restart: what it already had is not counted lost when the queue moves on (issue 13).

An SSE reader acknowledges only when it reconnects (``Last-Event-ID``), so
its queue holds what it was sent. A restarted hub cannot know how far that
went: evicting those entries before the reader is back is a loss only if
the reader then resumes below them, as for a reader that never went away.
"""

from tests.stack import wait_for
from tests.system.transport_client import HubPublisher, SSEStream

QUEUE = 10


def items(first, count):
    return [{"type": "item", "n": n} for n in range(first, first + count)]


def test_a_restarted_hub_does_not_count_what_an_sse_reader_had_as_lost(stack_factory):
    stack = stack_factory({"BRIDGE_QUEUE_SIZE": str(QUEUE)})
    client_id = stack.handshake()
    publisher = HubPublisher(stack)
    stream = SSEStream(stack, client_id)
    publisher.publish(items(0, QUEUE), target="client", to=client_id)
    first = [stream.next_message() for _ in range(QUEUE)]
    assert [e["data"]["n"] for e in first] == list(range(QUEUE)), first
    stream.close()
    publisher.close()
    stack.kill("hub")  # the queue (all of it sent, none of it acknowledged) is in the store
    stack.start("hub").wait_ready()
    publisher = HubPublisher(stack)
    publisher.publish(items(QUEUE, 5), target="client", to=client_id)  # evicts five the reader had
    stream = SSEStream(stack, client_id, last_event_id=first[-1]["id"])
    events = [stream.next_message() for _ in range(5)]
    stream.close()
    publisher.close()
    assert [e["event"] for e in events] == ["item"] * 5, events  # no messages_dropped
    assert [e["data"]["n"] for e in events] == list(range(QUEUE, QUEUE + 5))
    assert [e["id"] for e in events] == list(range(first[-1]["id"] + 1, first[-1]["id"] + 6))
    entry = wait_for(lambda: next(c for c in stack.get("/ws/clients").json["clients"] if c["id"] == client_id),
                     message="the client listed")
    assert entry["dropped"] == 0


def test_a_reader_that_resumes_below_what_a_restarted_hub_evicted_is_told_exactly(stack_factory):
    stack = stack_factory({"BRIDGE_QUEUE_SIZE": str(QUEUE)})
    client_id = stack.handshake()
    publisher = HubPublisher(stack)
    stream = SSEStream(stack, client_id)
    publisher.publish(items(0, QUEUE), target="client", to=client_id)
    first = [stream.next_message() for _ in range(QUEUE)]
    stream.close()
    publisher.close()
    stack.kill("hub")
    stack.start("hub").wait_ready()
    publisher = HubPublisher(stack)
    publisher.publish(items(QUEUE, 5), target="client", to=client_id)  # evicts n 0-4
    resume = first[2]["id"]  # the reader processed n 0-2 only: n 3 and 4 are gone, n 5-14 are queued
    stream = SSEStream(stack, client_id, last_event_id=resume)
    dropped = stream.next_message()
    events = [stream.next_message() for _ in range(QUEUE)]
    stream.close()
    publisher.close()
    assert dropped["event"] == "messages_dropped" and dropped["data"]["count"] == 2, dropped
    assert [e["data"]["n"] for e in events] == list(range(5, QUEUE + 5))
