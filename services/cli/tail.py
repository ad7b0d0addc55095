"""``lrbridge tail``: join as a client and print messages as they flow.

Reads the session over Server-Sent Events (``/ws/events``) when the gateway
has it, else by long-polling ``/ws/poll``; either way every read has a
timeout, a dropped stream resumes after the last message seen, and the
session is disconnected on the way out.
"""

import http.client
import json
import socket
import time
from urllib.parse import quote

from services.cli import exits
from services.cli.http import ApiError, NotRunning
from services.messages import DEFAULT_CHANNELS

DEFAULT_TAIL_CHANNELS = sorted(set(DEFAULT_CHANNELS.values()))
POLL_WAIT = 20  # seconds a long-poll may be held
READ_MARGIN = 30  # beyond the longest silence (keepalive or hold) before a read counts as lost
SKIP_TYPES = ("connection_established",)
STREAM_END = ("superseded", "closed")
RECONNECT_PAUSE = 1.0


class Stop(Exception):
    """Enough messages were printed (``--count``)."""


class Session:
    """A client session of type ``cli`` on the bridge."""

    def __init__(self, bridge, channels):
        self.bridge = bridge
        self.channels = channels
        self.client_id = None
        self.headers = {}
        self.last_seq = 0

    def open(self):
        reply = self.bridge.post("/ws/handshake", {"client_type": "cli", "protocol_version": "1.0"})
        self.client_id = reply["client_id"]
        if reply.get("client_secret"):
            self.headers = {"X-Client-Secret": reply["client_secret"]}
        self.send({"type": "register", "client_type": "cli", "client_name": "lrbridge tail"})
        # live messages only: no snapshot of jobs/system state (lrbridge jobs shows that)
        self.send({"type": "subscribe", "channels": self.channels, "snapshot": False})

    def send(self, message):
        return self.bridge.post("/ws/send", {"client_id": self.client_id, "message": message}, headers=self.headers)

    def close(self):
        if self.client_id is None:
            return
        try:
            self.bridge.post("/ws/disconnect", {"client_id": self.client_id}, headers=self.headers, timeout=3)
        except (NotRunning, ApiError):
            pass

    # ------------------------------------------------------------- reading
    def stream(self):
        """Messages as they arrive (SSE, or long-polls when the gateway has no SSE)."""
        while True:
            sse = self._sse()
            if sse is None:
                yield from self._polls()
                return
            yield from sse
            time.sleep(RECONNECT_PAUSE)  # the stream broke: resume after last_seq, without spinning

    def _sse(self):
        path = f"/ws/events?client_id={quote(self.client_id)}"
        if self.headers:
            path += "&client_secret=" + quote(self.headers["X-Client-Secret"])
        headers = self.bridge.headers({"Accept": "text/event-stream", "Cache-Control": "no-cache"})
        if self.last_seq:
            headers["Last-Event-ID"] = str(self.last_seq)
        conn = self.bridge.connect(timeout=POLL_WAIT + READ_MARGIN)
        try:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
        except (ConnectionError, socket.timeout, http.client.HTTPException) as ex:
            conn.close()
            raise NotRunning(f"no answer from {self.bridge.address} ({ex.__class__.__name__})") from None
        if resp.status == 404 and not _json_code(resp, "unknown_client"):
            conn.close()
            return None
        if resp.status != 200:
            body = resp.read()
            conn.close()
            raise ApiError(resp.status, _json(body))
        return self._events(conn, resp)

    def _events(self, conn, resp):
        event, data = None, []
        try:
            while True:
                try:
                    raw = resp.readline()
                except (socket.timeout, ConnectionError, http.client.HTTPException):
                    return  # the caller reconnects, resuming after last_seq
                if not raw:
                    return
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if line == "":
                    if data:
                        message = _json("\n".join(data).encode())
                        if event in STREAM_END:
                            raise ApiError(409, {"error": f"the stream was {event}", "code": event})
                        if event == "messages_dropped":
                            yield {"type": "messages_dropped", **(message or {})}
                        elif isinstance(message, dict):
                            self.last_seq = message.get("seq", self.last_seq)
                            yield message
                    event, data = None, []
                elif line.startswith(":"):
                    continue
                else:
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if name == "event":
                        event = value
                    elif name == "data":
                        data.append(value)
        finally:
            conn.close()

    def _polls(self):
        while True:
            path = f"/ws/poll?client_id={quote(self.client_id)}&wait={POLL_WAIT}&ack={self.last_seq}"
            reply = self.bridge.get(path, headers=self.headers, timeout=POLL_WAIT + READ_MARGIN)
            if reply.get("dropped"):
                yield {"type": "messages_dropped", "count": reply["dropped"]}
            for message in reply.get("messages", []):
                self.last_seq = max(self.last_seq, message.get("seq", 0))
                yield message
            if reply.get("closed") or reply.get("superseded"):
                return


def _json(raw):
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _json_code(resp, code):
    body = _json(resp.read())
    return isinstance(body, dict) and body.get("code") == code


def line_for(message):
    """``14:03:07 jobs job_progress job_id=job123 progress=50``."""
    clock = time.strftime("%H:%M:%S")
    channel = message.get("channel", "-")
    fields = " ".join(
        f"{k}={v if isinstance(v, (int, float, str)) and not isinstance(v, bool) else json.dumps(v)}"
        for k, v in message.items() if k not in ("type", "channel", "timestamp", "seq")
    )
    return f"{clock} {channel} {message.get('type')} {fields}".rstrip()


def tail(args, bridge, out):
    channels = args.channel or DEFAULT_TAIL_CHANNELS
    session = Session(bridge, channels)
    printed = 0
    session.open()
    if not args.json:
        out.write(f"listening on {', '.join(channels)} at {bridge.address} (Ctrl-C to stop)\n")
        out.flush()
    try:
        for message in session.stream():
            if message.get("type") in SKIP_TYPES:
                continue
            out.write((json.dumps(message, sort_keys=True) if args.json else line_for(message)) + "\n")
            out.flush()
            printed += 1
            if args.count and printed >= args.count:
                break
    except KeyboardInterrupt:
        pass
    finally:
        session.close()
    return exits.OK
