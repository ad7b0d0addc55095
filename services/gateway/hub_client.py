"""The gateway's side of the request/reply protocol: one DEALER per worker process.

Requests carry an id from a per-process counter; one receiver task hands
each reply to the future waiting on that id. A reply whose id nobody waits
for any more (it came after its timeout) is dropped, so a late reply can
never answer a newer request. With ZMQ_IMMEDIATE the socket queues nothing
while the hub is away, so a request fails at once instead of piling up; a
socket monitor fails every waiting request the moment the hub disconnects.
"""

import asyncio
import itertools
import logging

import zmq
import zmq.asyncio
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
    """Sends requests to the hub and awaits their replies, by id, with a timeout."""

    def __init__(self, endpoint, timeout, curve_keys=None):
        self.endpoint = endpoint
        self.timeout = timeout
        self.curve_keys = curve_keys  # services.curve.ClientKeys when the hub needs CURVE
        self._ids = itertools.count(1)
        self._pending = {}
        self._sock = None
        self._tasks = []
        self._loop = None
        self._connected = None

    def _start(self):
        loop = asyncio.get_running_loop()
        if self._sock is not None and self._loop is loop:
            return
        self._loop = loop
        self._connected = asyncio.Event()
        ctx = zmq.asyncio.Context.instance()
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.IMMEDIATE, 1)
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        sock.setsockopt(zmq.MAXMSGSIZE, protocol.MAX_FRAME_BYTES)
        sock.setsockopt(zmq.SNDHWM, 100000)
        sock.setsockopt(zmq.RCVHWM, 100000)
        # HANDSHAKE_SUCCEEDED, not CONNECTED: with IMMEDIATE a send only succeeds once the handshake is done
        monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED)
        if self.curve_keys is not None:
            curve.connect_as_client(sock, self.curve_keys)
        sock.connect(self.endpoint)
        self._sock = sock
        self._tasks = [loop.create_task(self._receive(sock)), loop.create_task(self._watch(monitor))]

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
        req_id = next(self._ids)
        future = self._loop.create_future()
        self._pending[req_id] = future
        try:
            try:
                await self._sock.send_multipart(protocol.encode_request(op, req_id, **fields), flags=zmq.NOBLOCK)
            except zmq.Again:
                raise HubUnavailable("the hub is not connected") from None
            try:
                reply = await asyncio.wait_for(future, wait)
            except asyncio.TimeoutError:
                raise HubUnavailable("the hub did not answer in time") from None
        finally:
            self._pending.pop(req_id, None)
        if not reply["ok"]:
            raise HubError(reply["code"], reply.get("reason") or reply["code"], reply.get("field"), reply.get("retry_after"))
        return reply

    async def _receive(self, sock):
        while True:
            try:
                frames = await sock.recv_multipart()
            except (asyncio.CancelledError, zmq.ContextTerminated):
                return
            except zmq.ZMQError as ex:
                log.error("hub socket failed: %s", ex)
                return
            try:
                reply = protocol.decode_reply(frames)
            except ProtocolError as ex:
                log.warning("bad reply from the hub dropped: %s", ex.reason)
                continue
            future = self._pending.get(reply["id"])
            if future is not None and not future.done():
                future.set_result(reply)

    async def _watch(self, monitor):
        while True:
            try:
                event = parse_monitor_message(await monitor.recv_multipart())
            except (asyncio.CancelledError, zmq.ContextTerminated):
                return
            except zmq.ZMQError:
                return
            if event["event"] == zmq.EVENT_DISCONNECTED:
                self._connected.clear()
                log.warning("hub at %s disconnected; failing %d waiting requests", self.endpoint, len(self._pending))
                for future in list(self._pending.values()):
                    if not future.done():
                        future.set_exception(HubUnavailable("the hub went away"))
            elif event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._connected.set()
                log.info("connected to the hub at %s", self.endpoint)

    async def close(self):
        """Stop the tasks and close the socket."""
        for task in self._tasks:
            task.cancel()
        if self._sock is not None:
            self._sock.disable_monitor()
            self._sock.close(linger=0)
            self._sock = None
