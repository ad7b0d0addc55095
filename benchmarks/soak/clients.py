"""The soak's checked clients, one thread each: long-poll with ack, WebSocket, Server-Sent Events.

Each behaves as a careful real client does (docs/TRANSPORTS.md): it resumes
its session after any break (503, a dropped connection, close 1013) from
the last seq it processed, handshakes again only on ``unknown_client``, and
records every message, drop notice and break in its ``ClientLog``. Every
network wait has a timeout; ``interrupt()`` ends a blocked read at once.
"""

import http.client
import json
import socket
import threading
import time

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import connect

from benchmarks.soak.checker import ClientLog

RETRY = 0.2  # seconds between attempts after a failure
TIMEOUT = 10.0  # every HTTP request's socket timeout, beyond a poll's hold


class Gone(Exception):
    """The hub no longer knows this session (``unknown_client``): handshake again."""


class Broken(OSError):
    """The answer says try again (503, a closed stream): its text is the kind recorded."""


class Client(threading.Thread):
    """Base: the session, the recording, the retry loop and the stop flag."""

    transport = None

    def __init__(self, name, port, channels):
        super().__init__(name=name, daemon=True)
        self.port = port
        self.log = ClientLog(name, self.transport, channels)
        self.stopping = threading.Event()
        self.client_id = None
        self.secret = None
        self.session = None
        self.last_seq = 0
        self._sock = None
        self.ready = threading.Event()

    # ------------------------------------------------------------- HTTP
    def http(self, method, path, body=None, timeout=TIMEOUT):
        """One request on a fresh connection: ``(status, json or None)``; raises OSError on a broken link."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            headers = {"X-Client-Secret": self.secret} if self.secret else {}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=headers)
            self._sock = conn.sock
            resp = conn.getresponse()
            raw = resp.read()
            try:
                return resp.status, json.loads(raw) if raw else None
            except ValueError:
                return resp.status, None
        except (http.client.HTTPException, ValueError) as ex:
            raise Broken("bad HTTP answer") from ex
        finally:
            self._sock = None
            conn.close()

    def handshake(self):
        """A new session over HTTP, subscribed to the client's channels."""
        self.secret = None
        status, body = self.http("POST", "/ws/handshake", {"client_type": "soak", "protocol_version": "1.0"})
        if status != 200:
            raise Broken(f"handshake {status}")
        self.client_id, self.secret = body["client_id"], body.get("client_secret")
        self.last_seq = 0
        self.session = self.log.new_session(self.client_id)
        self.subscribe_http()

    def subscribe_http(self):
        if not self.log.channels:
            return
        message = {"type": "subscribe", "channels": sorted(self.log.channels)}
        deadline = time.monotonic() + 30
        while True:
            status, _ = self.http("POST", "/ws/send", {"client_id": self.client_id, "message": message})
            if status == 200:
                return
            if status == 404:
                raise Gone()
            if time.monotonic() > deadline:
                raise Broken(f"subscribe {status}")
            self.pause()

    def record(self, message):
        seq = message.get("seq")
        if isinstance(seq, int):
            self.log.arrival(self.session, seq, message, time.monotonic())
            self.last_seq = max(self.last_seq, seq)

    # ------------------------------------------------------------- loop
    def pause(self, seconds=RETRY):
        self.stopping.wait(seconds)

    def run(self):
        while not self.stopping.is_set():
            try:
                if self.client_id is None:
                    self.handshake()
                self.serve()
            except Gone:
                self.log.event("session_lost")
                self.client_id = None
            except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake) as ex:
                if not self.stopping.is_set():
                    self.log.event(str(ex) if isinstance(ex, Broken) else type(ex).__name__)
                    self.pause()
            except Exception as ex:  # recorded and retried: one odd answer must not end the soak's client
                self.log.event(f"error {type(ex).__name__}: {str(ex)[:80]}")
                self.pause()

    def serve(self):
        raise NotImplementedError

    def stop(self):
        """Ask the thread to end and break any blocked read."""
        self.stopping.set()
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class PollClient(Client):
    """Long-poll with ``ack`` (as the Lightroom plugin does): every answer's messages, then ack them."""

    transport = "poll"
    wait = 5

    def poll_once(self, wait):
        """One poll; returns the number of messages it brought."""
        path = f"/ws/poll?client_id={self.client_id}&wait={wait}&ack={self.last_seq}"
        status, body = self.http("GET", path, timeout=wait + TIMEOUT)
        if status == 404:
            raise Gone()
        if status != 200 or body is None:
            raise Broken(f"poll {status}")
        now = time.monotonic()
        self.log.dropped(body.get("dropped", 0), now)
        for message in body.get("messages", ()):
            self.record(message)
        if body.get("superseded") or body.get("closed"):
            self.log.event("superseded" if body.get("superseded") else "closed")
        return len(body.get("messages", ()))

    def serve(self):
        self.ready.set()
        while not self.stopping.is_set():
            self.poll_once(self.wait)


class BacklogClient(PollClient):
    """Subscribed to the large-message channel; polls only while a backlog fault (or the final drain) asks."""

    transport = "poll"
    keepalive = 60.0  # a poll now and then, so the session never goes stale between faults

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.gate = threading.Event()

    def serve(self):
        self.ready.set()
        last = time.monotonic()
        while not self.stopping.is_set():
            if self.gate.wait(0.2) or time.monotonic() - last > self.keepalive:
                self.poll_once(1 if self.gate.is_set() else 0)
                last = time.monotonic()

    def stop(self):
        self.gate.set()
        super().stop()


class WebSocketClient(Client):
    """``/ws``: handshake (resuming with ``last_seq``), subscribe, ack about once a second."""

    transport = "websocket"

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.subscribed = False

    def handshake(self):  # the session is made over the WebSocket itself, in serve()
        self.client_id = ""

    def serve(self):
        with connect(f"ws://127.0.0.1:{self.port}/ws", open_timeout=5, close_timeout=1, max_size=None) as ws:
            self._sock = ws.socket
            hello = {"type": "handshake", "client_type": "soak", "protocol_version": "1.0"}
            if self.client_id:
                hello.update(client_id=self.client_id, last_seq=self.last_seq)
                if self.secret:
                    hello["client_secret"] = self.secret
            ws.send(json.dumps(hello))
            established = self.read(ws, 10)
            if established.get("type") == "error":
                if established.get("code") == "unknown_client":
                    raise Gone()
                raise Broken(f"handshake {established.get('code')}")
            if not established.get("resumed"):
                self.client_id, self.secret = established["client_id"], established.get("client_secret")
                self.last_seq = 0
                self.subscribed = False
                self.session = self.log.new_session(self.client_id)
                self.record(established)
            if not self.subscribed:
                ws.send(json.dumps({"type": "subscribe", "channels": sorted(self.log.channels), "ref": "sub"}))
            acked, last_ack = self.last_seq, time.monotonic()
            while not self.stopping.is_set():
                try:
                    frame = self.read(ws, 0.5)
                except TimeoutError:
                    frame = None
                if frame is not None:
                    self.frame(frame)
                if self.last_seq > acked and (self.last_seq - acked >= 50 or time.monotonic() - last_ack >= 1):
                    ws.send(json.dumps({"type": "ack", "seq": self.last_seq}))
                    acked, last_ack = self.last_seq, time.monotonic()
            if self.last_seq > acked:
                ws.send(json.dumps({"type": "ack", "seq": self.last_seq}))

    def read(self, ws, timeout):
        try:
            return json.loads(ws.recv(timeout=timeout))
        except ConnectionClosed as ex:
            code = ex.rcvd.code if ex.rcvd is not None else None
            if code in (4000, 4004):
                raise Gone() from None
            if code == 4001:
                self.log.event("superseded")
            raise Broken(f"closed {code}" if code else "connection lost") from None

    def frame(self, frame):
        kind = frame.get("type")
        if kind == "messages_dropped":
            self.log.dropped(frame.get("count", 0), time.monotonic())
        elif kind == "subscription_confirmed" and frame.get("ref") == "sub":
            self.subscribed = True
            self.ready.set()
        elif kind == "error":
            if frame.get("code") == "unknown_client":
                raise Gone()
            self.log.event(f"error frame {frame.get('code')}")
            if frame.get("ref") == "sub":
                raise Broken("subscribe refused")
        elif "seq" in frame:
            self.record(frame)


class SSEClient(Client):
    """``/ws/events`` with ``Last-Event-ID`` = the last seq it processed (so a reconnect acks and resumes)."""

    transport = "sse"
    read_timeout = 20.0  # > BRIDGE_SSE_KEEPALIVE (the soak sets 5 s): a silent stream is a dead one

    def serve(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            headers = {"Accept": "text/event-stream", "Last-Event-ID": str(self.last_seq)}
            if self.secret:
                headers["X-Client-Secret"] = self.secret
            conn.request("GET", f"/ws/events?client_id={self.client_id}", headers=headers)
            self._sock = conn.sock
            resp = conn.getresponse()
            if resp.status == 404:
                raise Gone()
            if resp.status != 200:
                resp.read()
                raise Broken(f"events {resp.status}")
            conn.sock.settimeout(self.read_timeout)
            self.ready.set()
            buffer = b""
            while not self.stopping.is_set():
                data = resp.read1(65536)
                if not data:
                    raise Broken("stream ended")
                buffer += data
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    self.event_block(block)
        except http.client.HTTPException as ex:
            raise Broken("bad HTTP answer") from ex
        finally:
            self._sock = None
            conn.close()

    def event_block(self, block):
        name, data = None, None
        for line in block.decode().split("\n"):
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
        if name is None or data is None:
            return
        if name == "messages_dropped":
            self.log.dropped(data.get("count", 0), time.monotonic())
        elif name in ("closed", "unknown_client"):
            raise Gone()
        elif name == "superseded":
            self.log.event("superseded")
            raise Broken("superseded")
        elif "seq" in data:
            self.record(data)
