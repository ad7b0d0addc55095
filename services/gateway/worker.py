"""The gunicorn worker and HTTP protocol the gateway runs on.

uvicorn's httptools protocol drops the authority of an absolute-form request
line (``GET http://evil.example/ws/status HTTP/1.1``) before the app sees it,
and HTTP says the server must then ignore ``Host`` in its favour. This
protocol keeps the target in the ASGI scope (``bridge.absolute_form``) so the
Host guard can refuse a foreign one.

uvicorn times out nothing before a request's headers are complete (its
keep-alive timer stops at the first byte), so a connection that never
finishes them would be held for ever; this protocol closes it after
``BRIDGE_HEADER_TIMEOUT`` seconds. The worker stops when its gunicorn master
is gone (services/parentwatch.py).
"""

import asyncio
import gc
import logging
import os
import threading
import weakref

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
try:
    from uvicorn_worker import UvicornWorker
except ImportError:  # Windows: no gunicorn; `python -m services.gateway` uses only the protocol below
    UvicornWorker = object

from services import parentwatch
from services.gateway.guard import ABSOLUTE_FORM_KEY

log = logging.getLogger(__name__)

ORPHAN_GRACE = 2.0  # seconds an orphaned worker gives its shutdown before it cancels what is left
ORPHAN_DEADLINE = 10.0  # and when it ends even if its shutdown hangs

_STOPPING_BODY = b'{"success":false,"error":"the gateway is stopping: try again","code":"hub_unavailable"}'
_STOPPING = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
             b"retry-after: 1\r\nconnection: close\r\n\r\n%s" % (len(_STOPPING_BODY), _STOPPING_BODY))


class _OneWriteResponse:
    """A response's transport that sends its head and first body part in one write.

    uvicorn writes the status line and headers, then the body, as two writes:
    two ``send`` system calls and often two TCP segments for every poll
    answer. This holds the head until the body comes (in the same event-loop
    tick for every ordinary response) and writes both at once; a head with no
    body in that tick (a stream that has nothing yet) is written at the end of
    the tick. Later parts of a stream go straight through.
    """

    __slots__ = ("transport", "loop", "head", "joined")

    def __init__(self, transport, loop):
        self.transport = transport
        self.loop = loop
        self.head = None
        self.joined = False

    def write(self, data):
        if self.joined:
            self.transport.write(data)
        elif self.head is None:
            self.head = data
            self.loop.call_soon(self.flush)
        else:
            head, self.head = self.head, None
            self.joined = True
            self.transport.write(head + data)

    def flush(self):
        if self.head is not None:
            head, self.head = self.head, None
            self.joined = True
            self.transport.write(head)

    def close(self):
        self.flush()
        self.transport.close()

    def __getattr__(self, name):  # is_closing, get_extra_info…: the real transport's
        return getattr(self.transport, name)


class _Event:
    """``asyncio.Event`` (``wait``, ``set``, ``clear``, ``is_set``) that allocates nothing until someone waits.

    uvicorn gives each connection one for write flow control and each request
    one for its body; asyncio's own holds a deque of waiters (760 bytes)
    from the start, though nearly always no one waits: with thousands of
    idle long-polls that was a sixth of the gateway's memory per poll.
    """

    __slots__ = ("_value", "_waiters")

    def __init__(self, value=False):
        self._value = value
        self._waiters = None

    def is_set(self):
        return self._value

    def set(self):
        if not self._value:
            self._value = True
            for future in self._waiters or ():
                if not future.done():
                    future.set_result(True)

    def clear(self):
        self._value = False

    async def wait(self):
        if self._value:
            return True
        future = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(future)
        try:
            await future
            return True
        finally:
            self._waiters.remove(future)


class _Pipeline(list):
    """uvicorn's queue of pipelined requests (``appendleft``, ``pop``, truth) as a list: a deque costs 760
    bytes on every connection, and a client that pipelines is rare."""

    __slots__ = ()

    def appendleft(self, item):
        self.insert(0, item)


class StrictHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, remembering an absolute-form request target.

    Each response also goes out in one write (``_OneWriteResponse``). A
    request's head (request line and headers) must arrive within
    ``header_timeout`` seconds of the connection, or of its first byte on a
    kept-alive connection; else the connection is closed. The time a request
    then takes (a long-poll's hold, a stream) is not limited here.
    """

    header_timeout = 10.0  # BRIDGE_HEADER_TIMEOUT; set by the worker and __main__ (set_header_timeout)
    _head_timer = None
    _live = weakref.WeakSet()  # open HTTP connections, for close_all()
    _live_loop = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pipeline = _Pipeline()

    def connection_made(self, transport):
        super().connection_made(transport)
        self.flow._is_writable_event = _Event(True)  # the light event (write flow control starts writable)
        StrictHttpToolsProtocol._live_loop = self.loop
        self._live.add(self)
        self._arm_head_timer()

    def handle_websocket_upgrade(self):
        self._live.discard(self)  # the WebSocket protocol owns the connection from now on
        super().handle_websocket_upgrade()

    @classmethod
    def close_all(cls):
        """From any thread, when the process must stop at once: each request in hand is answered 503
        ``hub_unavailable`` with Retry-After (the client retries elsewhere or later), never left to be
        cancelled into a 500, and every HTTP connection is closed."""
        loop = cls._live_loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(cls._close_all)

    @classmethod
    def _close_all(cls):
        for connection in list(cls._live):
            connection._answer_stopping()

    def _answer_stopping(self):
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_started and not cycle.disconnected:
            self.transport.write(_STOPPING)
            cycle.disconnected = True  # whatever the app sends later goes nowhere
            cycle.message_event.set()
        self.transport.close()

    def data_received(self, data):
        if self._head_timer is None and (self.cycle is None or self.cycle.response_complete):
            self._arm_head_timer()  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)

    def connection_lost(self, exc):
        self._live.discard(self)
        self._disarm_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self):
        if self.header_timeout:
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm_head_timer(self):
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self):
        self._head_timer = None
        if not self.transport.is_closing():
            log.info("closed a connection from %s: no complete request head within %g s",
                     (self.client or ("?",))[0], self.header_timeout)
            self.transport.close()

    def send_400_response(self, msg):
        """A request the HTTP parser refuses (a Content-Length past 64 bits, a broken request line…) gets
        the JSON error shape every other refusal has, not uvicorn's plain text; the connection then closes."""
        body = b'{"success":false,"error":"the request is not valid HTTP/1.1","code":"bad_request"}'
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        head.extend(name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers)
        head.append(b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body))
        self.transport.write(b"".join(head) + body)
        self.transport.close()

    def on_headers_complete(self):
        self._disarm_head_timer()
        url = self.url
        if url[:1] not in (b"/", b"*") and not self.parser.should_upgrade():
            self.scope[ABSOLUTE_FORM_KEY] = url.decode("latin-1")
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not before and cycle is not None and not cycle.response_started:  # a new request, not
            cycle.transport = _OneWriteResponse(self.transport, self.loop)  # a WebSocket upgrade nor refused
            cycle.message_event = _Event()  # nothing waits on it yet: its task has not run

    def _start_asgi_task(self, cycle, app):
        """A poll is served without a task when the app can (services/gateway/fastpoll.py, ``FastPoll.take``)."""
        take = getattr(app, "take", None)
        if take is not None and take(cycle, self.transport, self.server_state.default_headers):
            return
        super()._start_asgi_task(cycle, app)


class GatewayWorker(UvicornWorker):
    """gunicorn's uvicorn worker with the strict protocol.

    ``proxy_headers`` off: the gateway is not meant to sit behind a proxy,
    and uvicorn would otherwise take ``X-Forwarded-For`` from any local
    process as the client's address, so one program could pass for many
    and get round the per-address handshake limit. It also spares every
    request a middleware layer.
    """

    CONFIG_KWARGS = {"loop": "auto", "http": "services.gateway.worker:StrictHttpToolsProtocol",
                     "proxy_headers": False}

    def run(self):
        parentwatch.watch(self.ppid, self._orphaned, name=f"gateway worker {os.getpid()}")
        tune_gc()
        return super().run()

    def _orphaned(self):
        """The master is gone: answer what is in hand, stop serving (the port is released) and exit within seconds."""
        self.config.timeout_graceful_shutdown = ORPHAN_GRACE  # read when the shutdown starts
        stop_now()
        timer = threading.Timer(ORPHAN_DEADLINE, os._exit, (1,))
        timer.daemon = True
        timer.start()
        parentwatch.stop_self()


class _QuietCancellations(logging.Filter):
    """Once stopping at once, a request task cancelled by the shutdown is expected: no traceback for it."""

    def filter(self, record):
        return not (record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError))


GC_YOUNG_THRESHOLD = 10000  # allocations between two young-generation collections (Python's default: 700)


def tune_gc():
    """Fewer garbage collections per request, none over what start-up made (the app, its imports).

    Each parked poll holds a few dozen objects that outlive a young
    collection; with Python's default a worker serving 1 000 long-polls
    spent about a sixth of its time collecting (docs/PERFORMANCE.md).
    Reference counting frees nearly everything a request makes; a larger
    young generation lets it do so before a collection looks. The hub does
    the same (services/hub/server.py).
    """
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def stop_now():
    """The process stops at once (its parent is gone): answer requests in hand and close every connection."""
    logging.getLogger("uvicorn.error").addFilter(_QuietCancellations())
    StrictHttpToolsProtocol.close_all()


def set_header_timeout(seconds):
    """How long a connection may take to send a complete request head (0: no limit)."""
    StrictHttpToolsProtocol.header_timeout = seconds
