"""Clients for the push transports in system tests: WebSocket frames, an SSE reader, a fast publisher.

The WebSocket side uses the ``websockets`` package's sync client; the SSE
reader speaks plain HTTP/1.1 through ``http.client`` (chunked, optionally
gzip); the publisher is a backend's ZeroMQ DEALER to the hub's request
socket, so a test can queue thousands of messages in well under a second.
"""

import http.client
import itertools
import json
import time
import zlib

import psutil
import zmq
from websockets.sync.client import connect

from services import protocol


# ------------------------------------------------------------------ WebSocket
def ws_connect(stack, **kw):
    """An open WebSocket to the stack's gateway (``/ws``)."""
    kw.setdefault("open_timeout", 10)
    kw.setdefault("close_timeout", 2)
    return connect(f"ws://127.0.0.1:{stack.http_port}/ws", **kw)


def send_frame(ws, frame):
    ws.send(json.dumps(frame))


def recv_frame(ws, timeout=10.0):
    """The next frame as a dict (TimeoutError when none comes in time)."""
    return json.loads(ws.recv(timeout=timeout))


def ws_handshake(ws, client_type="dashboard", client_id=None, last_seq=None, timeout=10.0):
    """Send the handshake frame; returns the ``connection_established`` frame."""
    frame = {"type": "handshake", "client_type": client_type, "protocol_version": "1.0"}
    if client_id is not None:
        frame["client_id"] = client_id
    if last_seq is not None:
        frame["last_seq"] = last_seq
    send_frame(ws, frame)
    reply = recv_frame(ws, timeout)
    assert reply["type"] == "connection_established", reply
    return reply


def ws_request(ws, frame, timeout=10.0):
    """Send a client message frame with a ``ref`` and return the reply carrying that ref.

    Pushed queue messages that arrive meanwhile are returned too, in order.
    """
    ref = f"r{time.monotonic_ns()}"
    send_frame(ws, dict(frame, ref=ref))
    pushed = []
    deadline = time.monotonic() + timeout
    while True:
        reply = recv_frame(ws, max(0.01, deadline - time.monotonic()))
        if reply.get("ref") == ref:
            return reply, pushed
        pushed.append(reply)


def ws_collect(ws, until_seq, timeout=20.0, frames=None):
    """Read frames until one with ``seq >= until_seq``; returns every frame read (appended to ``frames``)."""
    frames = [] if frames is None else frames
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no seq {until_seq} within {timeout}s; last frames: {frames[-3:]}")
        frame = recv_frame(ws, remaining)
        frames.append(frame)
        if frame.get("seq", -1) >= until_seq:
            return frames


def serving_worker(stack, local_port):
    """The PID of the gateway worker holding the TCP connection from ``local_port``."""
    master = psutil.Process(stack.procs["gateway"].pid)
    for child in master.children():
        try:
            for conn in child.net_connections("tcp"):
                if conn.raddr and conn.raddr.port == local_port and conn.status == psutil.CONN_ESTABLISHED:
                    return child.pid
        except psutil.NoSuchProcess:
            continue
    return None


def gateway_rss(stack):
    """Resident memory of all gateway workers together, in bytes."""
    master = psutil.Process(stack.procs["gateway"].pid)
    total = 0
    for child in master.children():
        try:
            total += child.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


# ------------------------------------------------------------------------ SSE
class SSEStream:
    """One ``GET /ws/events`` response read event by event."""

    def __init__(self, stack, client_id, last_event_id=None, query=None, gzip=False, timeout=10.0):
        self.conn = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=timeout)
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        if gzip:
            headers["Accept-Encoding"] = "gzip"
        path = f"/ws/events?client_id={client_id}" + (f"&{query}" if query else "")
        self.conn.request("GET", path, headers=headers)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = {k.lower(): v for k, v in self.resp.getheaders()}
        gzipped = self.headers.get("content-encoding") == "gzip"
        self.inflate = zlib.decompressobj(31) if gzipped else None
        self.buffer = b""
        self.ended = False

    def body_json(self):
        return json.loads(self.resp.read())

    def next(self, timeout=10.0):
        """The next event or comment as ``{"id", "event", "data", "comment", "retry"}``."""
        deadline = time.monotonic() + timeout
        while b"\n\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no SSE event in time")
            self.conn.sock.settimeout(remaining)
            data = self.resp.read1(65536)
            if not data:
                self.ended = True
                raise EOFError("the event stream ended")
            self.buffer += self.inflate.decompress(data) if self.inflate else data
        block, self.buffer = self.buffer.split(b"\n\n", 1)
        event = {"id": None, "event": None, "data": None, "comment": None, "retry": None}
        for line in block.decode().split("\n"):
            if line.startswith(":"):
                event["comment"] = line[1:].strip()
            else:
                name, _, value = line.partition(": ")
                event[name] = value
        if event["data"] is not None:
            event["data"] = json.loads(event["data"])
        if event["id"] is not None:
            event["id"] = int(event["id"])
        return event

    def next_message(self, timeout=10.0):
        """The next event that is not a comment or a retry line."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.next(max(0.01, deadline - time.monotonic()))
            if event["event"] is not None:
                return event

    def close(self):
        self.conn.close()


# ------------------------------------------------------------------ publisher
class HubPublisher:
    """A backend's view: publish requests straight to the hub's request socket, pipelined."""

    def __init__(self, stack):
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(stack.env["BRIDGE_HUB_RPC"])
        self.ids = itertools.count(1)

    def publish(self, messages, target=protocol.TARGET_ALL, to=None, timeout=30.0):
        """Publish every message in order; returns once the hub answered them all."""
        count = 0
        for message in messages:
            event = protocol.publish_event(target, message, to)
            self.sock.send_multipart(protocol.encode_request(protocol.OP_PUBLISH, next(self.ids), **event))
            count += 1
        deadline = time.monotonic() + timeout
        for _ in range(count):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.sock.poll(int(remaining * 1000)):
                raise AssertionError("the hub did not answer the publish requests in time")
            reply = protocol.decode_reply(self.sock.recv_multipart())
            assert reply["ok"], reply

    def close(self):
        self.sock.close()
