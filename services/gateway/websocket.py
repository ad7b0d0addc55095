"""``/ws``: the native WebSocket transport (JSON text frames), a view of the same hub session as polling.

Frames (docs/TRANSPORTS.md has the full protocol)::

    client  {"type": "handshake", "client_type", "protocol_version", ["client_id", "last_seq"]}
    server  {"type": "connection_established", "client_id", "resumed", "seq"|"last_seq", ...}
    client  any message /ws/send accepts      ->  server: the same reply (pong, ...), "ref" echoed
    client  {"type": "ack", "seq": N}         ->  (no reply) messages up to N are forgotten
    client  {"type": "disconnect"}            ->  session removed, closed with 1000
    server  each queued message, with its "seq"; {"type": "messages_dropped", "count"} on overflow
    server  {"type": "error", "success": false, "code", "error", ["field", "ref"]}

Two tasks per connection: one reads client frames, one pushes the queue (a
``SessionStream``). Writes share a lock, so frames never interleave; a write
that cannot finish within two ping intervals ends the connection.
"""

import asyncio
import logging

import falcon
import orjson
from falcon.errors import PayloadTypeError, WebSocketDisconnected

from services import protocol
from services.endings import ENDINGS
from services.gateway.hub_client import HubError, HubUnavailable
from services.gateway.inputs import InputError, int_value, message_field, optional_str, parse_json, secret_value
from services.gateway.stream import SessionStream, StreamEnded, resume_point, stop_tasks, within

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 10.0  # seconds a new connection has to send its handshake frame

# Close codes, from the catalogue of endings (services/endings.py; 4000-4999 are the application's own).
CLOSE_NORMAL = ENDINGS["disconnected"].ws_close
CLOSE_TRY_AGAIN = ENDINGS["hub_unavailable"].ws_close  # the hub is unavailable: reconnect and resume
CLOSE_HANDSHAKE_TIMEOUT = ENDINGS["handshake_timeout"].ws_close
CLOSE_TOO_SLOW = ENDINGS["too_slow"].ws_close


def _error_frame(code, message, field=None, ref=None):
    frame = {"type": "error", "success": False, "code": code, "error": message}
    if field is not None:
        frame["field"] = field
    if ref is not None:
        frame["ref"] = ref
    return frame


class _Closing(Exception):
    """End the connection with ``code`` and ``reason``."""

    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code
        self.reason = reason


class WebSocketEndpoint:
    """Falcon resource for ``/ws``: one ``Connection`` per accepted WebSocket."""

    def __init__(self, hub, config):
        self.hub = hub
        self.config = config

    async def on_websocket(self, req, ws):
        await ws.accept()
        await Connection(self.hub, self.config, ws).run()

    async def on_get(self, req, resp):
        raise falcon.HTTPError(
            falcon.HTTP_426, description="/ws is the WebSocket endpoint: connect with a WebSocket client",
            headers={"Upgrade": "websocket"},
        )


class Connection:
    """One WebSocket: handshake, then a frame reader and a queue pusher until either ends."""

    def __init__(self, hub, config, ws):
        self.hub = hub
        self.config = config
        self.ws = ws
        self.stream = None
        self.write_lock = asyncio.Lock()
        self.write_timeout = 2 * config.ws_ping_interval
        self.disconnecting = False

    # ------------------------------------------------------------- frames
    async def send(self, frame):
        """Write one JSON text frame; a peer that takes two ping intervals to accept it is dropped."""
        text = orjson.dumps(frame).decode()
        async with self.write_lock:
            try:
                await within(self.ws.send_text(text), self.write_timeout)
            except asyncio.TimeoutError:
                raise _Closing(CLOSE_TOO_SLOW, "the client did not read for two ping intervals") from None

    async def receive(self):
        """The next frame as a JSON object, or ``None`` after answering a bad one with an error frame."""
        try:
            text = await self.ws.receive_text()
        except PayloadTypeError:
            await self.send(_error_frame("bad_request", "frames must be JSON text, not binary"))
            return None
        try:
            frame = parse_json(text, "frame")
        except InputError as ex:
            await self.send(_error_frame("bad_request", ex.message, ex.field))
            return None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            await self.send(_error_frame("bad_request", "a frame must be a JSON object with a 'type'", "type"))
            return None
        return frame

    # ---------------------------------------------------------- lifecycle
    async def run(self):
        """Serve the connection until the client leaves, is replaced, or the session ends."""
        code, reason = CLOSE_NORMAL, "bye"
        try:
            try:
                established = await within(self.handshake(), HANDSHAKE_TIMEOUT)
            except asyncio.TimeoutError:
                raise _Closing(CLOSE_HANDSHAKE_TIMEOUT, "no handshake frame in time") from None
            await self.send(established)
            log.info("websocket %s %s", self.stream.client_id, "resumed" if established["resumed"] else "connected")
            code, reason = await self.serve()
        except _Closing as ex:
            code, reason = ex.code, ex.reason
        except WebSocketDisconnected:
            code = None
        finally:
            if self.stream is not None:
                await self.stream.detach()
        if code is not None and not self.ws.closed:
            log.info("websocket %s closed: %s", self.stream.client_id if self.stream else "-", reason)
            try:
                await within(self.ws.close(code, reason), self.write_timeout)
            except (asyncio.TimeoutError, WebSocketDisconnected):
                pass

    async def serve(self):
        """Run the reader and the pusher; the first to finish decides how the connection closes."""
        tasks = [asyncio.create_task(self.read_frames()), asyncio.create_task(self.push())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await stop_tasks(tasks)
        ex = next(iter(done)).exception()
        if ex is None:
            return CLOSE_NORMAL, "disconnected"
        if isinstance(ex, StreamEnded):
            if self.disconnecting:
                return CLOSE_NORMAL, "disconnected"
            ending = ENDINGS[ex.reason]
            return ending.ws_close, ending.reason
        if isinstance(ex, HubUnavailable):
            return CLOSE_TRY_AGAIN, ENDINGS["hub_unavailable"].reason
        raise ex

    # ----------------------------------------------------------- handshake
    async def handshake(self):
        """Read frames until a valid handshake; returns the ``connection_established`` frame."""
        while True:
            frame = await self.receive()
            if frame is None:
                continue
            if frame["type"] != "handshake":
                await self.send(_error_frame("bad_request", "the first frame must be a handshake", "type"))
                continue
            try:
                return await self._establish(frame)
            except InputError as ex:
                await self.send(_error_frame(ex.code or "bad_request", ex.message, ex.field))
            except HubError as ex:
                await self.send(_error_frame(ex.code, ex.reason))
            except protocol.ProtocolError as ex:
                await self.send(_error_frame(ex.code, ex.reason, ex.field))
            except HubUnavailable as ex:
                await self.send(_error_frame("hub_unavailable", f"the bridge hub is not available: {ex}"))
                raise _Closing(CLOSE_TRY_AGAIN, "the bridge hub is unavailable: try again") from None

    async def _establish(self, frame):
        client_type = optional_str(frame, "client_type", "unknown", 64)
        version = optional_str(frame, "protocol_version", protocol.CLIENT_PROTOCOL_VERSION, 16)
        client_id = frame.get("client_id")
        if client_id is None:
            reply = await self.hub.request(
                protocol.OP_HANDSHAKE, client_type=client_type, protocol_version=version
            )
            client_id = reply["client_id"]
            # connection_established is queued as seq 1; this answer is that message, so it is acked.
            secret = reply["client_secret"]
            await resume_point(self.hub, client_id, 1, secret)
            self.stream = SessionStream(self.hub, self.config, client_id, protocol.TRANSPORT_WEBSOCKET, 1, secret)
            return {
                "type": "connection_established", "client_id": client_id, "client_secret": secret, "seq": 1,
                "protocol_version": reply["protocol_version"], "server_time": reply["server_time"],
                "timestamp": reply["server_time"], "resumed": False,
            }
        if not isinstance(client_id, str) or not client_id or len(client_id) > 200:
            raise InputError(400, "field 'client_id' must be a non-empty string", "client_id")
        if protocol.client_major(version) not in protocol.SUPPORTED_CLIENT_MAJORS:
            raise protocol.ProtocolError("unsupported_version", f"protocol_version {version} is not supported",
                                         "protocol_version")
        last_seq = frame.get("last_seq")
        if last_seq is not None:
            int_value(last_seq, "last_seq", 0)
        secret = secret_value(frame.get("client_secret"), self.config.require_client_secret)
        reply = await resume_point(self.hub, client_id, last_seq, secret)
        self.stream = SessionStream(
            self.hub, self.config, client_id, protocol.TRANSPORT_WEBSOCKET, reply["acked"], secret
        )
        return {
            "type": "connection_established", "client_id": client_id, "resumed": True,
            "last_seq": reply["acked"], "client_type": reply["client_type"],
            "protocol_version": protocol.CLIENT_PROTOCOL_VERSION,
        }

    # -------------------------------------------------------------- tasks
    async def push(self):
        """Push the session's queue, one batch at a time, until the stream ends."""
        hold = max(self.config.poll_max_wait, 1.0)
        while True:
            messages, dropped = await self.stream.next_batch(hold)
            if dropped:
                await self.send({"type": "messages_dropped", "count": dropped})
            for message in messages:
                await self.send(message)

    async def read_frames(self):
        """Answer client frames until the client disconnects (returns) or the session ends (raises)."""
        while True:
            try:
                frame = await self.receive()
            except WebSocketDisconnected:
                return
            if frame is None:
                continue
            ref = frame.get("ref")
            if ref is not None and (isinstance(ref, bool) or not isinstance(ref, (str, int))):
                ref = None
            try:
                await self.handle(frame, ref)
            except InputError as ex:
                await self.send(_error_frame("bad_request", ex.message, ex.field, ref))
            except HubError as ex:
                await self.send(_error_frame(ex.code, ex.reason, None, ref))
                if ex.code == "unknown_client":
                    raise StreamEnded("unknown_client", ex.reason) from None
            except HubUnavailable as ex:
                await self.send(_error_frame("hub_unavailable", f"the bridge hub is not available: {ex}", None, ref))

    async def handle(self, frame, ref):
        """One client frame after the handshake."""
        kind = frame["type"]
        client_id = self.stream.client_id
        if kind == "ack":
            seq = int_value(frame.get("seq"), "seq", 0)
            await self.hub.request(protocol.OP_ACK, client_id=client_id, seq=seq, client_secret=self.stream.secret)
            return
        if kind == "handshake":
            raise InputError(400, "this connection has already completed its handshake", "type")
        if kind == "disconnect":
            self.disconnecting = True
            await self.hub.request(protocol.OP_DISCONNECT, client_id=client_id, client_secret=self.stream.secret)
            raise StreamEnded("closed", "disconnected")
        message = {k: v for k, v in frame.items() if k != "ref"}
        reply = await self.hub.request(
            protocol.OP_SEND, client_id=client_id, message=message_field({"message": message}),
            client_secret=self.stream.secret,
        )
        response = reply["response"]
        if ref is not None:
            response["ref"] = ref
        await self.send(response)


def uvicorn_ws_options(config):
    """uvicorn settings for ``/ws``: protocol pings every interval (a silent peer is dropped after a
    second one), frames no larger than a request body, permessage-deflate when the client offers it."""
    return {
        "ws_ping_interval": config.ws_ping_interval,
        "ws_ping_timeout": config.ws_ping_interval,
        "ws_max_size": config.max_body,
        "ws_per_message_deflate": True,
    }


def configure_worker(worker, config):
    """gunicorn ``post_worker_init`` hook: apply ``uvicorn_ws_options`` to the worker's uvicorn config."""
    for name, value in uvicorn_ws_options(config).items():
        setattr(worker.config, name, value)
