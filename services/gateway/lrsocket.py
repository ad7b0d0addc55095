"""``/ws/lrsocket``: push into the Lightroom plug-in over its LrSocket, proven before trusted.

The plug-in binds an LrSocket in receive mode (port 0: the OS chooses) and
announces the port with its session and secret::

    POST /ws/lrsocket         {"client_id", "port"}            -> the bridge connects and writes a probe line
    POST /ws/lrsocket/probe   {"client_id", "port", "probe"}   -> the plug-in read the probe: push may start
    POST /ws/lrsocket/ack     {"client_id", "seq"}             -> ack, and "pushing": is the bridge still pushing?

The gateway connects to 127.0.0.1 only, on the announced port only, and
never opens a second connection to a port the bridge holds. After the
connection it writes ``{"type": "lrsocket_probe", "probe": …}`` and waits up
to 2 s for the plug-in to acknowledge it over HTTP; only then does it open
its stream poll (transport ``lrsocket``), which takes the session over from
the long-poll. Then each queued message is one JSON line with its ``seq``
(``{"type": "messages_dropped", "count": N}`` before the next ones after a
loss), under the same session, window, overflow and ``dropped`` rules as
WebSocket and SSE (services/gateway/stream.py).

Any doubt ends the connection and hands the session back to the long-poll
(the gateway detaches; the plug-in's next poll resumes after its last ack):
no probe ack in 2 s, a write that fails or cannot finish in 2 s, the plug-in
closing its end, no ack of pushed messages within one poll hold. The plug-in
sees ``pushing: false`` on its next light check even where LrSocket never
calls ``onClosed`` (Windows). docs/TRANSPORTS.md and docs/PLUGIN.md.
"""

import asyncio
import logging

import orjson

from services import protocol
from services.gateway.hub_client import HubError, HubUnavailable
from services.gateway.inputs import InputError, client_secret, int_value, required_str
from services.gateway.resources import _Resource, ok
from services.gateway.stream import SessionStream, StreamEnded, stop_tasks, within

log = logging.getLogger(__name__)

PUSH_HOST = "127.0.0.1"  # the only address the bridge ever connects to
MAX_PORT = 65535
CONNECT_TIMEOUT = 2.0
PROBE_TIMEOUT = 2.0  # the plug-in must acknowledge the probe within this (services/hub/lrsocket.py)
WRITE_TIMEOUT = 2.0  # a write the plug-in does not take within this ends the push
READ_LIMIT = 65536  # the plug-in sends nothing on a receive socket: whatever comes is read and ignored

_held = {}  # port -> Pusher: the connections this worker holds (the hub checks across workers)


def _secret(req, body):
    secret = client_secret(req, body)
    if secret is None:
        raise InputError(401, "an LrSocket announcement needs the client_secret the handshake returned "
                              "(X-Client-Secret or the body's client_secret)", "client_secret", "secret_required")
    return secret


def _port(body):
    value = body.get("port")
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PORT:
        raise InputError(400, f"field 'port' must be an integer from 1 to {MAX_PORT}: the port LrSocket bound "
                              f"(onConnecting)", "port")
    return value


def _host(body):
    host = body.get("host")
    if host is not None and host != PUSH_HOST:
        raise InputError(400, f"field 'host' must be {PUSH_HOST} or absent: the bridge connects to {PUSH_HOST} only",
                         "host")


class _Doubt(Exception):
    """The push is not to be trusted any more: end it, the plug-in goes back to long-poll."""


class Pusher:
    """One connection to a plug-in's LrSocket: probe, then push the session's queue line by line."""

    def __init__(self, hub, config, client_id, secret, port, probe, acked):
        self.hub = hub
        self.config = config
        self.client_id = client_id
        self.secret = secret
        self.port = port
        self.probe = probe
        self.stream = SessionStream(hub, config, client_id, protocol.TRANSPORT_LRSOCKET, acked, secret)
        self.reader = None
        self.writer = None
        self.reason = None  # why the push ended (logged)

    async def connect(self):
        """Connect to 127.0.0.1:port and write the probe line; ``InputError(409)`` when nothing listens."""
        try:
            self.reader, self.writer = await asyncio.wait_for(
                asyncio.open_connection(PUSH_HOST, self.port, limit=READ_LIMIT), CONNECT_TIMEOUT)
            await self._write([{"type": "lrsocket_probe", "probe": self.probe, "port": self.port}])
        except (OSError, asyncio.TimeoutError, _Doubt) as ex:
            self._close()
            raise InputError(409, f"cannot reach the plug-in's LrSocket on {PUSH_HOST}:{self.port}: {ex}", "port",
                             "push_unreachable") from None

    async def _write(self, items):
        self.writer.write(b"".join(orjson.dumps(item) + b"\n" for item in items))
        try:
            await within(self.writer.drain(), WRITE_TIMEOUT)
        except asyncio.TimeoutError:
            raise _Doubt(f"a write did not finish in {WRITE_TIMEOUT:g} s") from None
        except OSError as ex:
            raise _Doubt(f"a write failed: {ex}") from None

    async def run(self):
        """Wait for the probe's ack, then push until a doubt, a takeover or the end of the session."""
        try:
            try:
                await self.hub.request(protocol.OP_PUSH_WAIT, timeout=PROBE_TIMEOUT, client_id=self.client_id,
                                       probe=self.probe, reader=self.stream.reader)
            except HubUnavailable:
                self.reason = f"no probe ack in {PROBE_TIMEOUT:g} s"
                return
            except HubError as ex:
                self.reason = f"probe refused: {ex.reason}"
                return
            log.info("lrsocket %s: pushing to port %d", self.client_id, self.port)
            tasks = [asyncio.create_task(self._push()), asyncio.create_task(self._watch_peer()),
                     asyncio.create_task(self._watch_acks())]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                await stop_tasks(tasks)
            ex = next(iter(done)).exception()
            if isinstance(ex, StreamEnded):
                self.reason = ex.reason
            elif isinstance(ex, (_Doubt, HubUnavailable, HubError)):
                self.reason = str(ex) or type(ex).__name__
            elif ex is not None:
                raise ex
        finally:
            self._close()
            try:
                await self.stream.detach()
            finally:
                if _held.get(self.port) is self:
                    del _held[self.port]
                log.info("lrsocket %s: push to port %d ended (%s); the plug-in long-polls", self.client_id,
                         self.port, self.reason)

    async def _push(self):
        hold = max(self.config.poll_max_wait, 1.0)
        while True:
            messages, dropped = await self.stream.next_batch(hold)
            items = [{"type": "messages_dropped", "count": dropped}] if dropped else []
            items.extend(messages)
            if items:
                await self._write(items)

    async def _watch_peer(self):
        while True:
            data = await self.reader.read(READ_LIMIT)
            if not data:
                raise _Doubt("the plug-in closed its socket")

    async def _watch_acks(self):
        """Pushed messages not acknowledged within one poll hold: the plug-in is not reading them."""
        hold = max(self.config.poll_max_wait, 1.0)
        mark = None
        while True:
            await asyncio.sleep(hold)
            reply = await self.hub.request(protocol.OP_ACK, client_id=self.client_id, client_secret=self.secret)
            if mark is not None and reply["acked"] < mark:
                raise _Doubt(f"messages up to seq {mark} pushed and not acknowledged within {hold:g} s")
            mark = self.stream.after

    def _close(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class Announce(_Resource):
    """POST /ws/lrsocket: the plug-in's LrSocket port; the bridge connects and sends the probe."""

    async def on_post(self, req, resp):
        body = await self.body(req)
        client_id = required_str(body, "client_id")
        _host(body)
        port = _port(body)
        secret = _secret(req, body)
        if port in _held:
            raise InputError(409, f"the bridge holds a connection to port {port} already", "port", "port_in_use")
        reply = await self.hub.request(protocol.OP_PUSH_ANNOUNCE, client_id=client_id, client_secret=secret, port=port)
        pusher = Pusher(self.hub, self.config, client_id, secret, port, reply["probe"], reply["acked"])
        _held[port] = pusher
        try:
            await pusher.connect()
        except BaseException:
            del _held[port]
            raise
        asyncio.get_running_loop().create_task(pusher.run())
        ok(resp, {"port": port, "probe_sent": True})


class Probe(_Resource):
    """POST /ws/lrsocket/probe: the plug-in read the probe on its socket; the push may take the session."""

    async def on_post(self, req, resp):
        body = await self.body(req)
        client_id = required_str(body, "client_id")
        port = _port(body)
        probe = required_str(body, "probe", 64)
        secret = _secret(req, body)
        await self.hub.request(protocol.OP_PUSH_PROOF, client_id=client_id, client_secret=secret, port=port,
                               probe=probe)
        ok(resp, {"port": port})


class Ack(_Resource):
    """POST /ws/lrsocket/ack: acknowledge up to ``seq``; ``pushing`` false means: long-poll again."""

    async def on_post(self, req, resp):
        body = await self.body(req)
        client_id = required_str(body, "client_id")
        fields = {"client_id": client_id, "client_secret": _secret(req, body)}
        if body.get("seq") is not None:
            fields["seq"] = int_value(body.get("seq"), "seq", 0)
        reply = await self.hub.request(protocol.OP_PUSH_CHECK, **fields)
        ok(resp, {"acked": reply["acked"], "pushing": reply["pushing"], "next_seq": reply["next_seq"]})
