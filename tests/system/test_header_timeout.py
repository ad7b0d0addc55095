"""A connection must complete its request head within BRIDGE_HEADER_TIMEOUT, under gunicorn and under uvicorn alone.

uvicorn times out nothing before the headers are complete, so 1 500
connections that never finished theirs were held for good. A long-poll,
whose head is complete at once, is never cut, however long it is held.
"""

import socket
import threading
import time

import pytest

from tests.stack import Stack

HEADER_TIMEOUT = 2.0
CLOSE_DEADLINE = HEADER_TIMEOUT + 8.0  # closed by then, whatever the machine's load
SLOW_CONNECTIONS = 50


def _open(stack, data):
    sock = socket.create_connection(("127.0.0.1", stack.http_port), timeout=10)
    if data:
        sock.sendall(data)
    return sock


def _closed_within(sock, deadline):
    """True when the server closes ``sock`` before ``deadline`` (monotonic); whatever it sent first is read."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            if sock.recv(65536) == b"":
                return True
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True


@pytest.fixture(params=["gunicorn", "uvicorn"])
def gateway(request, tmp_path):
    stack = Stack(tmp_path, {"BRIDGE_HEADER_TIMEOUT": str(HEADER_TIMEOUT), "BRIDGE_POLL_MAX_WAIT": "25"})
    if request.param == "uvicorn":  # as `lrbridge run` starts it on Windows
        stack.commands["gateway"] = "python -m services.gateway"
    stack.start("hub", "gateway").wait_ready()
    yield stack
    stack.stop_all()


def test_unfinished_heads_are_closed_and_a_25_s_long_poll_is_not_cut(gateway):
    client_id = gateway.handshake()
    poll = {}
    poller = threading.Thread(target=lambda: poll.update(r=gateway.poll(client_id, wait=25, timeout=40)))
    started = time.monotonic()
    poller.start()
    gateway.wait_parked(client_id)

    host = f"Host: 127.0.0.1:{gateway.http_port}\r\n".encode()
    slow = [_open(gateway, b"GET /ws/status HT") for _ in range(SLOW_CONNECTIONS)]  # a partial request line
    slow.append(_open(gateway, b"GET /ws/status HTTP/1.1\r\n" + host))  # headers never ended
    slow.append(_open(gateway, b""))  # nothing at all
    kept_alive = _open(gateway, b"GET /ws/status HTTP/1.1\r\n" + host + b"\r\n")
    kept_alive.settimeout(10)
    assert kept_alive.recv(65536).startswith(b"HTTP/1.1 ")  # one whole request answered ...
    kept_alive.sendall(b"GET /ws/status HTTP/1.1\r\nHo")  # ... then the next one's head never ends
    slow.append(kept_alive)

    deadline = time.monotonic() + CLOSE_DEADLINE
    try:
        held = [i for i, sock in enumerate(slow) if not _closed_within(sock, deadline)]
    finally:
        for sock in slow:
            sock.close()
    assert held == [], f"connections still open {CLOSE_DEADLINE} s after their start: {held}"
    assert gateway.get("/ws/status").status == 200  # the server itself is fine

    poller.join(40)
    r = poll["r"]
    assert r.status == 200 and r.json["messages"] == [], r
    assert time.monotonic() - started >= 24  # the hold ran its course: the head timeout did not end it


def test_a_body_that_trickles_past_the_timeout_is_answered_408_with_the_error_shape(gateway):
    host = f"Host: 127.0.0.1:{gateway.http_port}\r\n".encode()
    head = (b"POST /ws/broadcast HTTP/1.1\r\n" + host + b"Content-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n")
    sock = _open(gateway, head + b'{"message": {"type": "x"')  # 24 of the 100 bytes, then nothing
    try:
        sock.settimeout(CLOSE_DEADLINE)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b'"code":"request_timeout"' in answer and b'"success":false' in answer, answer
    assert gateway.get("/ws/status").status == 200
