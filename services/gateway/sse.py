"""``/ws/events?client_id=…``: Server-Sent Events, a read-only view of the same hub session.

One event per queued message::

    id: <seq>
    event: <message type>
    data: <the message as JSON, with its seq>

plus ``event: messages_dropped`` (no id) when the queue overflowed, a
``: keepalive`` comment after ``BRIDGE_SSE_KEEPALIVE`` (15 s) without
events, and a final ``event: superseded`` or ``event: closed`` when another
reader took the session over or the session ended (close the EventSource
then: it would otherwise reconnect and take the session back).

Acknowledgement: SSE has no channel back, so nothing is acked while the
stream runs. ``Last-Event-ID`` (sent by a reconnecting EventSource) or the
``last_event_id`` query parameter acks everything up to it at connect, and
delivery resumes after it. Delivered messages stay queued until then, but
when the queue is full they are the first to go and are not counted as
lost, unless a reconnect shows they never arrived (docs/TRANSPORTS.md).
"""

import orjson
from falcon.asgi import SSEvent

from services import protocol
from services.endings import ENDINGS
from services.gateway.compression import GzipStream, accepts_gzip, plain
from services.gateway.hub_client import HubUnavailable
from services.gateway.inputs import client_secret, int_text, query_str
from services.gateway.stream import SessionStream, StreamEnded, resume_point

RETRY_MS = 2000  # how long a browser waits before reconnecting a dropped stream


class _Chunk(SSEvent):
    """Bytes already in the event-stream format (and maybe gzip-compressed), written as they are."""

    __slots__ = ("raw",)

    def __init__(self, raw):
        super().__init__()
        self.raw = raw

    def serialize(self, handler=None):
        return self.raw


def message_event(message):
    """One queued message as an SSE event (id = seq, event = type)."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (
        message["seq"], message["type"].encode(), orjson.dumps(message),
    )


def named_event(name, fields):
    """An event without an id (so a reconnect's Last-Event-ID still names the last message)."""
    return b"event: %s\ndata: %s\n\n" % (name.encode(), orjson.dumps(fields))


def _last_event_id(req):
    raw = req.get_header("Last-Event-ID")
    field = "Last-Event-ID"
    if raw is None or raw.strip() == "":
        raw = req.get_param("last_event_id")
        field = "last_event_id"
    if raw is None or raw.strip() == "":
        return None
    return int_text(raw, field, 0, "message seq")


class Events:
    """GET /ws/events?client_id=: the session's messages as an event stream."""

    def __init__(self, hub, config):
        self.hub = hub
        self.config = config

    async def on_get(self, req, resp):
        client_id = query_str(req, "client_id")
        last = _last_event_id(req)
        secret = client_secret(req)  # EventSource cannot set headers: ?client_secret= works too
        reply = await resume_point(self.hub, client_id, last, secret)  # 404 here, before the stream starts
        stream = SessionStream(self.hub, self.config, client_id, protocol.TRANSPORT_SSE, reply["acked"], secret)
        encode = plain
        resp.append_header("Vary", "Accept-Encoding")
        if accepts_gzip(req):
            encode = GzipStream()
            resp.set_header("Content-Encoding", "gzip")
        resp.content_type = "text/event-stream"
        resp.set_header("Cache-Control", "no-cache")
        resp.set_header("X-Accel-Buffering", "no")
        resp.sse = self.events(stream, encode)

    async def events(self, stream, encode):
        """The stream's chunks: one per batch of messages, a keepalive when idle, a last event at the end."""
        hold = min(self.config.sse_keepalive, max(self.config.poll_max_wait, 1.0))
        try:
            yield _Chunk(encode(b"retry: %d\n\n" % RETRY_MS))
            while True:
                try:
                    messages, dropped = await stream.next_batch(hold)
                except StreamEnded as ex:
                    yield _Chunk(encode(named_event(ENDINGS[ex.reason].sse_event, {"reason": ex.message})))
                    return
                except HubUnavailable:
                    return  # the browser reconnects after RETRY_MS and resumes with Last-Event-ID
                if not messages and not dropped:
                    yield _Chunk(encode(b": keepalive\n\n"))
                    continue
                parts = []
                if dropped:
                    parts.append(named_event("messages_dropped", {"count": dropped}))
                parts.extend(message_event(m) for m in messages)
                yield _Chunk(encode(b"".join(parts)))
        finally:
            await stream.detach()
