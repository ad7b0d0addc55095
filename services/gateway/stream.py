"""A session's queue read as a stream: the long-poll loop behind ``/ws`` (WebSocket) and ``/ws/events`` (SSE).

Both push transports are views of the same hub session as ``/ws/poll``. A
connection polls the hub with its own ``reader`` token and ``after`` = the
last seq it pushed, so it never gets a message twice on the same
connection, while the messages stay queued until the client acknowledges
them (an ack frame, a ``last_seq`` at resume, or SSE's Last-Event-ID). It
asks for the next batch only once the previous one is written: a slow
reader holds at most one batch in the gateway, and everything else waits
in the client's bounded queue in the hub. docs/TRANSPORTS.md has the rules.
"""

import asyncio
import logging
import uuid

from services import protocol
from services.gateway.hub_client import HubError, HubUnavailable

log = logging.getLogger(__name__)

# An empty answer sooner than this means the hub holds no polls (BRIDGE_POLL_MAX_WAIT=0): pace the loop.
_MIN_EMPTY_ROUND = 0.05
_EMPTY_ROUND_PAUSE = 0.5


class StreamEnded(Exception):
    """The stream must stop; ``reason`` is ``superseded``, ``closed`` or ``unknown_client``."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason
        self.message = message


async def resume_point(hub, client_id, last_seq=None, secret=None):
    """Acknowledge ``last_seq`` (if given) and return the hub's ack reply: ``acked``, ``next_seq``.

    Raises ``HubError(unknown_client)`` for a session the hub does not know
    (or whose ``client_secret`` does not match ``secret``).
    """
    fields = {"client_id": client_id, "client_secret": secret}
    if last_seq is not None:
        fields["seq"] = last_seq
    return await hub.request(protocol.OP_ACK, **fields)


class SessionStream:
    """One connection's reading of a session: ``next_batch()`` until it raises ``StreamEnded``."""

    def __init__(self, hub, config, client_id, transport, after, secret=None):
        self.hub = hub
        self.config = config
        self.client_id = client_id
        self.secret = secret  # the session's client_secret, passed on every request (docs/SECURITY.md)
        self.transport = transport
        self.after = after  # the last seq this connection has pushed (or the client's resume point)
        self.reader = uuid.uuid4().hex
        self.attached = False
        self.detached = False

    async def next_batch(self, hold):
        """Wait up to ``hold`` seconds for messages; returns ``(messages, dropped)``.

        ``dropped`` is how many messages the client lost to overflow since
        the last report. Raises ``StreamEnded`` when this connection must
        stop, ``HubUnavailable`` when the hub cannot be reached.
        """
        fields = {
            "client_id": self.client_id, "wait": hold, "after": self.after,
            "reader": self.reader, "transport": self.transport, "client_secret": self.secret,
        }
        if not self.attached:
            fields["attach"] = True
            self.attached = True  # from now on the hub may hold a poll of ours: detach() releases it
        started = asyncio.get_running_loop().time()
        try:
            reply = await self.hub.request(
                protocol.OP_POLL, timeout=hold + self.config.poll_reply_margin, **fields
            )
        except HubError as ex:
            if ex.code == "unknown_client":
                raise StreamEnded("unknown_client", "the session is gone: handshake again") from None
            raise
        if reply.get("superseded"):
            raise StreamEnded("superseded", "another reader took over this session")
        if reply.get("closed"):
            raise StreamEnded("closed", "the session was closed")
        messages = reply["messages"]
        dropped = reply.get("dropped", 0)
        if messages:
            self.after = messages[-1]["seq"]
        elif not dropped and asyncio.get_running_loop().time() - started < min(hold, _MIN_EMPTY_ROUND):
            await asyncio.sleep(_EMPTY_ROUND_PAUSE)
        return messages, dropped

    async def detach(self):
        """Tell the hub this connection ended (best effort): the stale timeout runs from now."""
        if self.detached or not self.attached:
            return
        self.detached = True
        try:
            await self.hub.request(
                protocol.OP_DETACH, client_id=self.client_id, reader=self.reader, client_secret=self.secret
            )
        except (HubError, HubUnavailable) as ex:
            log.debug("detach of %s not confirmed: %s", self.client_id, ex)
