"""A session's queue read as a stream: the long-poll loop behind ``/ws`` (WebSocket) and ``/ws/events`` (SSE).

Both push transports are views of the same hub session as ``/ws/poll``. A
connection opens a *stream poll* with its own ``reader`` token, ``after`` =
the last seq it received, and a window (messages and bytes): the room left
in its buffer here. The hub keeps that poll parked and pushes each message
to it as it is queued, as long as the window lasts, so a burst larger than
the client's queue reaches a reader that keeps up. As the connection writes
a batch out it gives the room back (op ``credit``); a reader that stops
reading stops the credit, and then the client's bounded queue in the hub
fills and counts what it gives up. The messages stay queued until the
client acknowledges them (an ack frame, a ``last_seq`` at resume, or SSE's
Last-Event-ID). docs/TRANSPORTS.md has the rules.
"""

import asyncio
import logging
import uuid
from collections import deque

from services import protocol
from services.endings import BY_POLL_FLAG
from services.gateway.hub_client import HubError, HubUnavailable

log = logging.getLogger(__name__)

# An empty answer sooner than this means the hub holds no polls (BRIDGE_POLL_MAX_WAIT=0): pace the loop.
_MIN_EMPTY_ROUND = 0.05
_EMPTY_ROUND_PAUSE = 0.5

# A stream's buffer in the gateway (the window it grants the hub): at most this many messages and
# bytes, plus one message (the hub always sends at least one, whatever its size).
STREAM_WINDOW = 1000
STREAM_WINDOW_BYTES = 1024 * 1024


# What a stream's last SSE event says, by the ending's code.
_ENDED = {"superseded": "another reader took over this session", "closed": "the session was closed"}


_CANCEL_AGAIN = 1.0  # seconds a cancelled connection task may take to end before it is cancelled again


if hasattr(asyncio, "timeout"):
    async def within(awaitable, seconds):
        """``awaitable`` with a deadline (TimeoutError after ``seconds``).

        Not ``asyncio.wait_for``: before Python 3.12 it swallows a cancellation
        that arrives as the awaited write completes, and a WebSocket reader task
        that missed its cancellation kept a connection open (and its pusher
        gone) for as long as the client stayed.
        """
        async with asyncio.timeout(seconds):
            return await awaitable
else:  # Python 3.10: no asyncio.timeout; stop_tasks() sends a missed cancellation again
    within = asyncio.wait_for


async def stop_tasks(tasks):
    """Cancel ``tasks`` and wait until they end, cancelling again any that missed it (see ``within``)."""
    pending = [task for task in tasks if not task.done()]
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=_CANCEL_AGAIN)
        if pending:
            log.warning("a connection task ignored its cancellation: cancelling it again")


class StreamEnded(Exception):
    """The stream must stop; ``reason`` is the code of its ending (services/endings.py): ``superseded``,
    ``closed`` or ``unknown_client``."""

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
    """One connection's reading of a session: ``next_batch()`` until it raises ``StreamEnded``.

    Each call to ``next_batch()`` means the batch it returned last has been
    written to the client: its room is given back to the hub then.
    """

    def __init__(self, hub, config, client_id, transport, after, secret=None,
                 window=STREAM_WINDOW, window_bytes=STREAM_WINDOW_BYTES):
        self.hub = hub
        self.config = config
        self.client_id = client_id
        self.secret = secret  # the session's client_secret, passed on every request (docs/SECURITY.md)
        self.transport = transport
        self.after = after  # the last seq received from the hub (or the client's resume point)
        self.reader = uuid.uuid4().hex
        self.window = window
        self.window_bytes = window_bytes
        self.attached = False
        self.detached = False
        self.stream_id = None  # the stream poll the hub holds for us, if any
        self.buffer = deque()  # (messages, dropped, bytes, last) pushed by the hub, not yet handed out
        self.buffered = 0
        self.buffered_bytes = 0
        self.ending = None  # what to raise once the buffer is empty (the stream poll failed or was refused)
        self.handed = None  # (messages, bytes) of the batch handed out last: written by the next call
        self.owed = [0, 0]  # room written out since the last credit
        self.opened_at = None
        self.wake = asyncio.Event()

    async def next_batch(self, hold):
        """Wait up to ``hold`` seconds for messages; returns ``(messages, dropped)``.

        ``dropped`` is how many messages the client lost to overflow since
        the last report. Raises ``StreamEnded`` when this connection must
        stop, ``HubUnavailable`` when the hub cannot be reached.
        """
        self._written()
        while True:
            if self.buffer:
                messages, dropped, size, last = self.buffer.popleft()
                self.buffered -= len(messages)
                self.buffered_bytes -= size
                self.handed = (len(messages), size)
                if last and not messages and not dropped and self._too_quick(hold):
                    await asyncio.sleep(_EMPTY_ROUND_PAUSE)  # BRIDGE_POLL_MAX_WAIT=0: the hub holds nothing
                return messages, dropped
            if self.ending is not None:
                ending, self.ending = self.ending, None
                raise ending
            if self.stream_id is None:
                await self._open(hold)
            self.wake.clear()
            await self.wake.wait()

    def _too_quick(self, hold):
        return asyncio.get_running_loop().time() - self.opened_at < min(hold, _MIN_EMPTY_ROUND)

    async def _open(self, hold):
        fields = {
            "client_id": self.client_id, "wait": hold, "after": self.after,
            "reader": self.reader, "transport": self.transport, "client_secret": self.secret,
            "window": max(0, self.window - self.buffered), "window_bytes": max(0, self.window_bytes - self.buffered_bytes),
        }
        if not self.attached:
            fields["attach"] = True
            self.attached = True  # from now on the hub may hold a poll of ours: detach() releases it
        self.owed = [0, 0]
        self.opened_at = asyncio.get_running_loop().time()
        self.stream_id = await self.hub.open_stream(
            protocol.OP_POLL, self._received, hold + self.config.poll_reply_margin, **fields
        )

    def _written(self):
        """The batch handed out last is written: give its room back to the hub (a quarter at a time)."""
        if self.handed is None:
            return
        count, size = self.handed
        self.handed = None
        if self.stream_id is None:
            return  # the next stream poll's window counts the room afresh
        owed = self.owed
        owed[0] += count
        owed[1] += size
        if owed[0] * 4 >= self.window or owed[1] * 4 >= self.window_bytes:
            self.hub.notify(
                protocol.OP_CREDIT, client_id=self.client_id, reader=self.reader,
                window=owed[0], window_bytes=owed[1], client_secret=self.secret,
            )
            self.owed = [0, 0]

    def _received(self, reply):
        """One reply to the stream poll (a push, or the last one), or the ``HubUnavailable`` that ended it."""
        self.wake.set()
        if isinstance(reply, Exception):
            self.stream_id = None
            self.ending = reply
            return
        last = not reply.get("open")
        if last:
            self.stream_id = None
        if not reply["ok"]:
            if reply["code"] == "unknown_client":
                self.ending = StreamEnded("unknown_client", "the session is gone: handshake again")
            else:
                self.ending = HubError(reply["code"], reply.get("reason") or reply["code"], reply.get("field"),
                                       reply.get("retry_after"))
            return
        for flag, ending in BY_POLL_FLAG.items():
            if reply.get(flag):
                self.ending = StreamEnded(ending.code, _ENDED[ending.code])
                return
        messages = reply["messages"]
        if not messages and not last and not reply.get("dropped"):
            return
        size = reply.get("bytes", 0)
        if messages:
            self.after = messages[-1]["seq"]
        self.buffer.append((messages, reply.get("dropped", 0), size, last))
        self.buffered += len(messages)
        self.buffered_bytes += size
        if self.buffered > self.window or self.buffered_bytes > self.window_bytes + protocol.MAX_REPLY_BYTES:
            # The hub pushed past the window it was given: end this connection (the client resumes) rather
            # than hold more than the bound.
            log.error("stream of %s pushed past its window (%d messages, %d bytes): ending it",
                      self.client_id, self.buffered, self.buffered_bytes)
            if self.stream_id is not None:
                self.hub.close_stream(self.stream_id)
                self.stream_id = None
            self.ending = HubUnavailable("the stream overflowed its window")

    async def detach(self):
        """Tell the hub this connection ended (best effort): the stale timeout runs from now."""
        if self.detached or not self.attached:
            return
        self.detached = True
        if self.stream_id is not None:
            self.hub.close_stream(self.stream_id)
            self.stream_id = None
        try:
            await self.hub.request(
                protocol.OP_DETACH, client_id=self.client_id, reader=self.reader, client_secret=self.secret
            )
        except (HubError, HubUnavailable) as ex:
            log.debug("detach of %s not confirmed: %s", self.client_id, ex)
