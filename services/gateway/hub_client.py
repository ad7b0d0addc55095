"""The gateway's side of the request/reply protocol: one DEALER per worker process.

Requests carry an id from a per-process counter; one receiver task hands
each reply to the future waiting on that id. A reply whose id nobody waits
for any more (it came after its timeout) is dropped, so a late reply can
never answer a newer request. With ZMQ_IMMEDIATE the socket queues nothing
while the hub is away, so a request fails at once instead of piling up; a
socket monitor fails every waiting request the moment the hub disconnects.

A link that ends for any reason (the hub went away, a frame over the size
limit, ZMTP heartbeats unanswered for ``HEARTBEAT_TIMEOUT_MS``) is replaced
by a fresh DEALER at once: ZeroMQ itself never reconnects a link it closed
for a protocol error, and a worker must not stay cut off (docs/PROTOCOL.md,
rule 19).
"""

import asyncio
import itertools
import logging

import zmq
from zmq.utils.monitor import parse_monitor_message

from services import curve, protocol
from services.protocol import ProtocolError

log = logging.getLogger(__name__)


class HubUnavailable(Exception):
    """The hub did not answer in time, or is not connected."""


class HubError(Exception):
    """The hub refused the request: ``code`` is a key of ``protocol.ERRORS``."""

    def __init__(self, code, reason, field=None, retry_after=None):
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.field = field
        self.retry_after = retry_after


class HubClient:
    """Sends requests to the hub and awaits their replies, by id, with a timeout.

    The socket is a plain (blocking-API) DEALER driven by the event loop's
    reader callback on its file descriptor: a send never waits (NOBLOCK),
    and each wake-up drains every reply that arrived in one go. pyzmq's
    asyncio sockets cost a future and several callbacks per message, which
    was a third of a worker's time with 1 000 clients long-polling.
    """

    DRAIN_BUDGET = 2000  # replies handled per wake-up before yielding to the loop
    # ZMTP PINGs on an idle link; a hub that answers none for the timeout (stopped, wedged, a half-open
    # connection) is a dead link: waiting requests fail at once and a fresh socket is made.
    HEARTBEAT_IVL_MS = 250
    HEARTBEAT_TIMEOUT_MS = 1000

    def __init__(self, endpoint, timeout, curve_keys=None, max_reply_bytes=protocol.MAX_REPLY_BYTES):
        self.endpoint = endpoint
        self.timeout = timeout
        self.curve_keys = curve_keys  # services.curve.ClientKeys when the hub needs CURVE
        self.max_reply_bytes = max_reply_bytes  # ZMQ_MAXMSGSIZE: the hub never sends more (protocol.py)
        self._ids = itertools.count(1)
        self._pending = {}  # req_id -> future of a control request: resolved as soon as its reply is read
        self._polls = {}  # req_id -> future of a poll: resolved after the control replies read with it
        self._streams = {}  # req_id -> (sink, timer): requests answered by several replies (stream polls)
        self.reconnects = 0
        self._backoff = 0.0  # delay before the next fresh socket; grows while links keep failing at once
        self._sock = None
        self._monitor = None
        self._loop = None
        self._connected = None
        self._drain_scheduled = False
        self._outbox = []  # (packed request, future) waiting for this tick's send

    def _start(self):
        loop = asyncio.get_running_loop()
        if self._sock is not None and self._loop is loop:
            return
        self._loop = loop
        self._connected = asyncio.Event()
        self._open_socket()

    def _open_socket(self):
        loop = self._loop
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.IMMEDIATE, 1)
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        sock.setsockopt(zmq.MAXMSGSIZE, self.max_reply_bytes)
        sock.setsockopt(zmq.HEARTBEAT_IVL, self.HEARTBEAT_IVL_MS)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, self.HEARTBEAT_TIMEOUT_MS)
        sock.setsockopt(zmq.SNDHWM, 100000)
        sock.setsockopt(zmq.RCVHWM, 100000)
        # HANDSHAKE_SUCCEEDED, not CONNECTED: with IMMEDIATE a send only succeeds once the handshake is done
        monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED)
        if self.curve_keys is not None:
            curve.connect_as_client(sock, self.curve_keys)
        sock.connect(self.endpoint)
        self._sock = sock
        self._monitor = monitor
        loop.add_reader(sock.getsockopt(zmq.FD), self._drain)
        loop.add_reader(monitor.getsockopt(zmq.FD), self._watch)
        # The descriptor only signals changes: read whatever is already there.
        loop.call_soon(self._drain)
        loop.call_soon(self._watch)

    async def request(self, op, timeout=None, **fields):
        """Send one request; returns the reply's fields or raises ``HubError``/``HubUnavailable``."""
        self._start()
        wait = timeout if timeout is not None else self.timeout
        if not self._connected.is_set():
            # Just started, or the hub is restarting: give it up to our own deadline.
            try:
                await asyncio.wait_for(self._connected.wait(), min(wait, self.timeout))
            except asyncio.TimeoutError:
                raise HubUnavailable("the hub is not connected") from None
        future, forget = self._send(op, wait, fields)
        try:
            reply = await future
        finally:
            forget()
        if not reply["ok"]:
            raise _refusal(reply)
        return reply

    def request_nowait(self, op, timeout, callback, **fields):
        """``request`` for a caller that is no coroutine (the poll path in services/gateway/worker.py).

        Returns False, sending nothing, when the link is not up (``request``
        waits for it); else ``callback`` is called once, from the event loop,
        with the reply's fields or the ``HubError``/``HubUnavailable``.
        """
        self._start()
        if not self._connected.is_set():
            return False
        future, forget = self._send(op, timeout, fields)

        def done(future):
            forget()
            error = HubUnavailable("the request was cancelled") if future.cancelled() else future.exception()
            if error is None:
                reply = future.result()
                if reply["ok"]:
                    callback(reply)
                    return
                error = _refusal(reply)
            callback(error)

        future.add_done_callback(done)
        return True

    def _send(self, op, timeout, fields):
        """Queue one request; returns its future (resolved with the reply, or failed by the timer) and a
        function that stops waiting. A poll waits with the polls: its reply comes after the control replies."""
        req_id = next(self._ids)
        packed = self._encode(op, req_id, fields)
        future = self._loop.create_future()
        waiting = self._polls if op in protocol.POLL_OPS else self._pending
        waiting[req_id] = future
        timer = self._loop.call_later(timeout, _expire, future)
        # A control request goes now, with what this tick queued before it, not at the end of the event loop's
        # pass: under load a pass writes a round of poll answers.
        self._queue(packed, future, at_once=waiting is self._pending)

        def forget():
            timer.cancel()
            waiting.pop(req_id, None)
        return future, forget

    async def open_stream(self, op, sink, timeout, **fields):
        """Send one request that the hub answers with several replies (a stream poll); returns its id.

        ``sink(reply)`` is called with each reply as it arrives, in order; a
        reply without ``open: true`` is the last. If the link fails, or no last
        reply came within ``timeout`` seconds, ``sink`` gets a
        ``HubUnavailable`` instead, once. ``close_stream(id)`` stops listening.
        """
        self._start()
        if not self._connected.is_set():
            try:
                await asyncio.wait_for(self._connected.wait(), min(timeout, self.timeout))
            except asyncio.TimeoutError:
                raise HubUnavailable("the hub is not connected") from None
        req_id = next(self._ids)
        packed = self._encode(op, req_id, fields)
        timer = self._loop.call_later(timeout, self._fail_stream, req_id, "the hub did not answer in time")
        self._streams[req_id] = (sink, timer)
        self._queue(packed, None)
        return req_id

    def close_stream(self, req_id):
        """Forget a stream request: later replies to it are dropped."""
        entry = self._streams.pop(req_id, None)
        if entry is not None:
            entry[1].cancel()

    def notify(self, op, **fields):
        """Send a request whose reply nobody waits for (a stream's credit); a dead link just loses it."""
        if self._sock is None or not self._connected.is_set():
            return
        self._queue(self._encode(op, next(self._ids), fields), None)

    def _fail_stream(self, req_id, reason):
        entry = self._streams.pop(req_id, None)
        if entry is not None:
            entry[1].cancel()
            entry[0](HubUnavailable(reason))

    def _encode(self, op, req_id, fields):
        packed = protocol.encode_request(op, req_id, **fields)[1]
        if len(packed) > protocol.MAX_FRAME_BYTES:  # the hub's socket would drop it, and the link with it
            raise HubError("bad_request", f"the request is larger than {protocol.MAX_FRAME_BYTES} bytes")
        return packed

    def _queue(self, packed, future, at_once=False):
        self._outbox.append((packed, future))
        if at_once:
            self._flush()
        elif len(self._outbox) == 1:
            self._loop.call_soon(self._flush)

    def _flush(self):
        """Send the requests of this loop tick: one message, or a batch of them."""
        outbox, self._outbox = self._outbox, []
        if self._sock is None:  # closed while they waited for this tick
            for _, future in outbox:
                if future is not None and not future.done():
                    future.set_exception(HubUnavailable("the gateway is shutting down"))
            return
        if not outbox:
            return
        for run in protocol.batches(outbox, protocol.BATCH_BYTES, size_of=_payload_size):
            payload = protocol.payload_of([packed for packed, _ in run])
            try:
                protocol.send_frames(self._sock, (protocol.TAG, payload), zmq.NOBLOCK)
            except zmq.Again:
                for _, future in run:
                    if future is not None and not future.done():
                        future.set_exception(HubUnavailable("the hub is not connected"))
        self._after_send()

    def _after_send(self):
        # A send can consume the descriptor's edge while replies wait unread.
        if not self._drain_scheduled and self._sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            self._drain_scheduled = True
            self._loop.call_soon(self._drain)

    def _drain(self):
        """Read every reply waiting (up to ``DRAIN_BUDGET`` messages): a control request's reply is handed
        to its waiter at once, and the polls' (and streams') replies after all of them, in the order they
        came, so a control answer read with a round of poll answers is written out first."""
        self._drain_scheduled = False
        sock = self._sock
        if sock is None:
            return
        pending = self._pending
        later = []
        try:
            for _ in range(self.DRAIN_BUDGET):
                try:
                    frames = protocol.recv_frames(sock, zmq.NOBLOCK)
                except zmq.Again:
                    return
                except zmq.ZMQError as ex:
                    log.error("hub socket failed: %s", ex)
                    return
                try:
                    replies = protocol.decode_replies(frames)
                except ProtocolError as ex:
                    log.warning("bad reply from the hub dropped: %s", ex.reason)
                    continue
                for reply in replies:
                    future = pending.get(reply["id"])
                    if future is not None:
                        if not future.done():
                            future.set_result(reply)
                    else:
                        later.append(reply)
            # Budget spent with more waiting: let requests run, then carry on.
            self._drain_scheduled = True
            self._loop.call_soon(self._drain)
        finally:
            if later:
                self._resolve_polls(later)

    def _resolve_polls(self, replies):
        """Hand poll and stream replies to their waiters (a reply nobody waits for any more is dropped)."""
        polls, streams = self._polls, self._streams
        for reply in replies:
            req_id = reply["id"]
            future = polls.get(req_id)
            if future is not None:
                if not future.done():
                    future.set_result(reply)
                continue
            entry = streams.get(req_id)
            if entry is not None:
                if not reply.get("open"):
                    del streams[req_id]
                    entry[1].cancel()
                entry[0](reply)

    def _watch(self):
        monitor = self._monitor
        while monitor is not None:
            try:
                event = parse_monitor_message(monitor.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                return
            except zmq.ZMQError:
                return
            if event["event"] == zmq.EVENT_DISCONNECTED:
                self._connected.clear()
                log.warning(
                    "link to the hub at %s lost (the hub went away, stopped answering, or sent a frame over "
                    "%d bytes); failing %d waiting requests, reconnecting with a fresh socket",
                    self.endpoint, self.max_reply_bytes, len(self._pending) + len(self._polls) + len(self._streams),
                )
                self._fail_all("the hub went away")
                # At once after a healthy link; a link that keeps failing (say, CURVE keys the hub refuses)
                # is retried at most once a second rather than in a busy loop.
                self._loop.call_later(self._backoff, self._replace_socket, self._sock)
                self._backoff = min(1.0, max(0.1, self._backoff * 2))
                return
            elif event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._connected.set()
                self._backoff = 0.0
                log.info("connected to the hub at %s", self.endpoint)

    def _fail_all(self, reason):
        for future in [*self._pending.values(), *self._polls.values()]:
            if not future.done():
                future.set_exception(HubUnavailable(reason))
        for req_id in list(self._streams):
            self._fail_stream(req_id, reason)

    def _replace_socket(self, failed):
        """Close the failed DEALER and connect a new one (ZeroMQ gives up on a link it closed for an error)."""
        if self._sock is None or self._sock is not failed:  # closed or replaced meanwhile
            return
        self._close_sockets()
        self.reconnects += 1
        self._open_socket()

    async def close(self):
        """Stop reading and close the sockets."""
        self._close_sockets()
        self._fail_all("the gateway is shutting down")

    def _close_sockets(self):
        sock, monitor = self._sock, self._monitor
        self._sock = self._monitor = None
        if sock is None:
            return
        for s in (sock, monitor):
            try:
                self._loop.remove_reader(s.getsockopt(zmq.FD))
            except Exception:  # the loop may be closing already
                pass
        sock.disable_monitor()
        monitor.close(linger=0)
        sock.close(linger=0)


def _payload_size(item):
    return len(item[0])


def _refusal(reply):
    """The ``HubError`` a reply with ``ok: false`` stands for."""
    return HubError(reply["code"], reply.get("reason") or reply["code"], reply.get("field"), reply.get("retry_after"))


def _expire(future):
    if not future.done():
        future.set_exception(HubUnavailable("the hub did not answer in time"))
