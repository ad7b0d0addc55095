"""WebSocket under stress and failure: a reader that stops reading, a killed worker, a silent peer."""

import base64
import json
import os
import signal
import socket
import time

import pytest
from websockets.exceptions import ConnectionClosed

from tests.stack import Stack, wait_for
from tests.system.transport_client import (
    HubPublisher, gateway_rss, recv_frame, send_frame, serving_worker, ws_collect, ws_connect, ws_handshake,
)

QUEUE = 100


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("wsfaults"), {
        "BRIDGE_GATEWAY_WORKERS": "2", "BRIDGE_QUEUE_SIZE": str(QUEUE), "BRIDGE_WS_PING_INTERVAL": "30",
    })
    stack.start("hub", "gateway").wait_ready()
    yield stack
    stack.stop_all()


def client_entry(stack, client_id):
    return next(c for c in stack.get("/ws/clients").json["clients"] if c["id"] == client_id)


def test_a_reader_that_stops_reading_keeps_gateway_memory_bounded_and_overflow_exact(stack):
    total, payload = 10_000, 2000
    publisher = HubPublisher(stack)
    # No compression and random payloads: 20 MB that kernel buffers cannot absorb.
    with ws_connect(stack, compression=None, max_queue=4) as ws:
        client_id = ws_handshake(ws)["client_id"]
        wait_for(lambda: client_entry(stack, client_id)["polling"], message="the stream's parked poll")
        started = time.monotonic()
        messages = ({"type": "blob", "n": n, "data": os.urandom(payload // 2).hex()} for n in range(total))
        warmup = 2000  # overflows the queue already: the gateway is at its plateau after it
        publisher.publish((next(messages) for _ in range(warmup)), target="client", to=client_id)
        wait_for(lambda: client_entry(stack, client_id)["next_seq"] == warmup + 2, message="the warm-up queued")
        plateau = gateway_rss(stack)
        publisher.publish(messages, target="client", to=client_id)
        entry = wait_for(lambda: (e := client_entry(stack, client_id))["next_seq"] == total + 2 and e,
                         message="every message queued")
        growth = gateway_rss(stack) - plateau
        assert entry["queue_depth"] <= QUEUE
        rest = (total - warmup) * payload
        # A gateway that buffered for the silent reader would grow by all of ``rest``;
        # half leaves room for allocator noise and one batch in flight on a loaded machine.
        assert growth < rest / 2, f"gateway grew {growth / 1e6:.1f} MB while {rest / 1e6:.0f} MB more were sent"
        seqs, dropped = [], 0
        deadline = started + 50  # inside two ping intervals, or the server would drop the silent reader
        while not seqs or seqs[-1] < total + 1:
            frame = recv_frame(ws, max(0.1, deadline - time.monotonic()))
            if frame["type"] == "messages_dropped":
                dropped += frame["count"]
            else:
                assert frame["type"] == "blob" and frame["n"] == frame["seq"] - 2
                seqs.append(frame["seq"])
    publisher.close()
    assert seqs == sorted(set(seqs)), "out of order or duplicated"
    assert dropped > 0, "the test did not overflow the queue"
    assert len(seqs) + dropped == total
    assert client_entry(stack, client_id)["dropped"] == dropped
    assert stack.get("/ws/status").json["status"]["messages"]["dropped"] >= dropped


def test_killed_worker_the_client_resumes_on_another_with_nothing_lost(stack):
    publisher = HubPublisher(stack)
    with ws_connect(stack) as ws:
        client_id = ws_handshake(ws)["client_id"]
        publisher.publish([{"type": "item", "n": n} for n in range(50)], target="client", to=client_id)
        frames = ws_collect(ws, 51)
        last = frames[-1]["seq"]
        send_frame(ws, {"type": "ack", "seq": last})
        victim = serving_worker(stack, ws.local_address[1])
        assert victim is not None
        os.kill(victim, signal.SIGKILL)  # a child of the gateway this test started
        publisher.publish([{"type": "item", "n": n} for n in range(50, 100)], target="client", to=client_id)
        with pytest.raises(ConnectionClosed):
            while True:
                frame = recv_frame(ws, 10)
                last = max(last, frame["seq"])  # whatever was already on its way still counts
                frames.append(frame)
    with ws_connect(stack) as ws:
        established = ws_handshake(ws, client_id=client_id, last_seq=last)
        assert established["resumed"] and established["last_seq"] == last
        assert serving_worker(stack, ws.local_address[1]) not in (None, victim)
        frames = ws_collect(ws, 101, frames=frames)
    publisher.close()
    assert [f["seq"] for f in frames] == list(range(2, 102))
    assert [f["n"] for f in frames] == list(range(100))


def _raw_ws(port):
    """A WebSocket opened by hand that sends one handshake frame and then never reads or pongs again."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    payload = json.dumps({"type": "handshake", "client_type": "silent", "protocol_version": "1.0"}).encode()
    mask = os.urandom(4)
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    first, length = sock.recv(2)
    assert first == 0x81 and length <= 126
    if length == 126:
        length = int.from_bytes(sock.recv(2), "big")
    body = b""
    while len(body) < length:
        body += sock.recv(length - len(body))
    return sock, json.loads(body)["client_id"]


def test_a_silent_peer_is_noticed_within_two_ping_intervals_then_goes_stale(stack_factory):
    interval = 0.5
    stack = stack_factory({"BRIDGE_WS_PING_INTERVAL": str(interval), "BRIDGE_STALE_SECONDS": "3"})
    sock, client_id = _raw_ws(stack.http_port)
    try:
        silent_since = time.monotonic()
        wait_for(lambda: not client_entry(stack, client_id)["connected"], timeout=10, message="the detach")
        noticed = time.monotonic() - silent_since
        assert noticed <= 2 * interval + 1.0, noticed
        assert client_entry(stack, client_id)["transport"] == "websocket"
        wait_for(lambda: client_id not in {c["id"] for c in stack.get("/ws/clients").json["clients"]},
                 timeout=15, message="the stale session removed")
        assert time.monotonic() - silent_since >= 3
    finally:
        sock.close()


def test_a_stopped_hub_closes_the_reader_with_1013_and_it_resumes_losing_nothing(stack):
    # The link is declared dead while an ack is in flight: the ack's error frame and the stream's end
    # land on the same turn, and the reader must still be closed for the client to resume.
    publisher = HubPublisher(stack)
    with ws_connect(stack) as ws:
        client_id = ws_handshake(ws)["client_id"]
        publisher.publish([{"type": "item", "n": n} for n in range(5)], target="client", to=client_id)
        frames = ws_collect(ws, 6)
        stack.signal("hub", signal.SIGSTOP)
        try:
            send_frame(ws, {"type": "ack", "seq": 6})
            error = recv_frame(ws, 10)
            assert error["type"] == "error" and error["code"] == "hub_unavailable", error
        finally:
            stack.signal("hub", signal.SIGCONT)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                frames.append(recv_frame(ws, 10))  # TimeoutError: the connection was left open and mute
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013, closed.value
    last = frames[-1]["seq"]
    publisher.publish([{"type": "item", "n": n} for n in range(5, 10)], target="client", to=client_id)
    with ws_connect(stack) as ws:
        established = ws_handshake(ws, client_id=client_id, last_seq=last)
        assert established["resumed"] and established["last_seq"] == last
        frames = ws_collect(ws, 11, frames=frames)
    publisher.close()
    assert [f["seq"] for f in frames] == list(range(2, 12))
    assert [f["n"] for f in frames] == list(range(10))
