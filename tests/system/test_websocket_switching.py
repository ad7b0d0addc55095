"""One session, any transport: WebSocket -> long-poll -> SSE -> WebSocket while messages keep arriving."""

import threading
import time

import pytest

from tests.stack import Stack
from tests.system.transport_client import HubPublisher, SSEStream, recv_frame, send_frame, ws_connect, ws_handshake

TOTAL = 400
RATE = 150  # messages per second, paced by the publisher thread


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("switch"), {"BRIDGE_GATEWAY_WORKERS": "2", "BRIDGE_QUEUE_SIZE": "1000"})
    stack.start("hub", "gateway").wait_ready()
    yield stack
    stack.stop_all()


class Paced(threading.Thread):
    """Publishes TOTAL numbered messages to one client at RATE per second, then stops."""

    def __init__(self, stack, client_id):
        super().__init__(daemon=True)
        self.publisher = HubPublisher(stack)
        self.client_id = client_id
        self.error = None

    def run(self):
        try:
            started = time.monotonic()
            for n in range(0, TOTAL, 10):
                batch = [{"type": "tick", "n": k} for k in range(n, n + 10)]
                self.publisher.publish(batch, target="client", to=self.client_id)
                pause = started + (n + 10) / RATE - time.monotonic()
                if pause > 0:
                    time.sleep(pause)  # pacing the load, not waiting for a condition
        except Exception as ex:
            self.error = ex
        finally:
            self.publisher.close()


def test_switching_transports_delivers_each_message_exactly_once_in_order(stack):
    received = []  # (transport, seq, n)

    def take(transport, message):
        assert message["type"] == "tick", message
        received.append((transport, message["seq"], message["n"]))

    with ws_connect(stack) as ws:
        client_id = ws_handshake(ws)["client_id"]
        publisher = Paced(stack, client_id)
        publisher.start()
        while len(received) < 60:
            take("websocket", recv_frame(ws))
        send_frame(ws, {"type": "ack", "seq": received[-1][1]})
    # Long-poll, acknowledging as the plugin does; the first ack is the WebSocket's last seq.
    while len(received) < 140:
        r = stack.poll(client_id, wait=2, ack=received[-1][1])
        assert r.status == 200, r
        for message in r.json["messages"]:
            take("poll", message)
    stack.poll(client_id, wait=0, ack=received[-1][1])
    # SSE from the last seq seen (a fresh EventSource passes it as last_event_id).
    stream = SSEStream(stack, client_id, query=f"last_event_id={received[-1][1]}")
    try:
        while len(received) < 240:
            event = stream.next_message()
            assert event["id"] == event["data"]["seq"]
            take("sse", event["data"])
    finally:
        stream.close()
    still_publishing = publisher.is_alive()
    with ws_connect(stack) as ws:
        ws_handshake(ws, client_id=client_id, last_seq=received[-1][1])
        while received[-1][2] < TOTAL - 1:
            take("websocket", recv_frame(ws))
    publisher.join(10)
    assert publisher.error is None, publisher.error
    assert still_publishing, "every switch should happen while messages keep arriving"
    assert [n for _, _, n in received] == list(range(TOTAL))
    assert [seq for _, seq, _ in received] == list(range(2, TOTAL + 2))
    assert {t for t, _, _ in received} == {"websocket", "poll", "sse"}
    entry = next(c for c in stack.get("/ws/clients").json["clients"] if c["id"] == client_id)
    assert entry["dropped"] == 0 and entry["transport"] == "websocket"
