"""``GET /ws/poll`` answered ahead of Falcon: the same checks and answers, without the framework's cost per request.

A poll is most of what a gateway serves (every client holds one, and each
answer is followed by the next), and Falcon's request and response objects,
middleware chain and routing were a third of a worker's time per answer
(docs/PERFORMANCE.md). ``FastPoll`` wraps the Falcon app: ``GET /ws/poll``
is served here, everything else (including ``/ws/poll/``, other methods,
WebSocket and lifespan events) goes to Falcon unchanged.

Nothing is checked differently: the request goes through the same
functions as every other request, given a small request object with the
part of Falcon's interface they read (``scope``, ``get_header``,
``get_param``, ``context``): the Host/Origin guard (``HostOriginGuard.check``),
the client-secret rule (``ClientSecrets``), the query parameters and the
hub request (``resources.poll_answer``), the error shape and status of every
refusal (``errors.refusal``), CORS headers, gzip and the access log.
"""

import time

from falcon.constants import SINGLETON_HEADERS
from falcon.util.uri import parse_query_string
from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from services.gateway import access_log, errors
from services.gateway.auth import is_client_route
from services.gateway.compression import MIN_GZIP_BYTES, accepts_gzip, gzip_body
from services.gateway.resources import poll_answer, poll_body, poll_request
from services.protocol import OP_POLL

PATH = "/ws/poll"
_JSON = (b"content-type", b"application/json")
_SINGLETON_HEADERS = frozenset(name.encode() for name in SINGLETON_HEADERS)  # as Falcon reads them


class _Context:
    """``req.context`` as ``ClientSecrets`` leaves it (the same for every request)."""

    __slots__ = ("client_secret_required",)

    def __init__(self, required):
        self.client_secret_required = required


class PollRequest:
    """The part of a Falcon request the poll's checks read, built from the ASGI scope with Falcon's rules."""

    __slots__ = ("scope", "context", "_options", "_headers", "_params")
    method = "GET"
    path = PATH

    def __init__(self, scope, context, options):
        self.scope = scope
        self.context = context
        self._options = options
        self._headers = None
        self._params = None

    def get_header(self, name):
        """A header's value as Falcon gives it: repeated ones joined with ``,`` (singletons: the last)."""
        headers = self._headers
        if headers is None:
            headers = self._headers = {}
            for key, value in self.scope["headers"]:
                if key not in headers or key in _SINGLETON_HEADERS:
                    headers[key] = value
                else:
                    headers[key] += b"," + value
        value = headers.get(name.lower().encode("latin-1"))
        return None if value is None else value.decode("latin-1")

    def get_param(self, name):
        """A query parameter as Falcon gives it: the last of repeated ones."""
        params = self._params
        if params is None:
            query = self.scope["query_string"]
            params = self._params = parse_query_string(
                query.decode(), keep_blank=self._options.keep_blank_qs_values, csv=self._options.auto_parse_qs_csv,
            ) if query else {}
        value = params.get(name)
        return value[-1] if isinstance(value, list) else value


class FastPoll:
    """The gateway's ASGI entry: ``GET /ws/poll`` here, every other request to the Falcon ``app``.

    Two ways in, one answer. The HTTP protocol (services/gateway/worker.py)
    offers each request to ``take`` before it starts an ASGI task: a poll,
    while the hub link is up, is then checked at once and answered from the
    hub's reply by a callback, with no task, coroutine or ASGI messages (the
    task and uvicorn's response path were another third of a worker's time).
    Anything ``take`` leaves (the link is down and the poll must wait for it,
    ``Expect: 100-continue``, a server other than the gateway's) comes through
    ``__call__``, the ASGI way, to the same checks.
    """

    def __init__(self, app, hub, config, guard):
        self.app = app
        self.hub = hub
        self.config = config
        self.guard = guard
        self.context = _Context(config.require_client_secret)
        self.options = app.req_options
        # The poll is a client route: no operator token to check. Were it ever made an operator route,
        # Falcon (with OperatorAuth) would serve it again.
        self.path = PATH if is_client_route(PATH) else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "GET":
            return await self.app(scope, receive, send)
        try:
            scope["query_string"].decode()
        except UnicodeDecodeError:  # Falcon's own answer for it
            return await self.app(scope, receive, send)
        await self.poll(scope, send)

    async def poll(self, scope, send):
        started = time.perf_counter()
        req = PollRequest(scope, self.context, self.options)
        try:
            self.guard.check(req)
            body = await poll_answer(self.hub, self.config, req)
            status, extra = 200, {}
        except Exception as ex:  # every refusal gets the shape and status Falcon's handlers give it
            status, body, extra = errors.refusal(req, ex)
        headers, body = self.shape(req, body, extra)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        access_log.record("GET", PATH, status, started)

    def shape(self, req, body, extra):
        """The response headers (as ASGI gives them) and body: JSON, CORS, ``extra``, gzip, length."""
        headers = [_JSON]
        vary = b"Accept-Encoding"
        for name, value in self.guard.cors_headers(req):
            if name == "Vary":
                vary += b", " + value.encode("latin-1")
            else:
                headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        headers.append((b"vary", vary))
        for name, value in extra.items():
            headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        if len(body) >= MIN_GZIP_BYTES and accepts_gzip(req):
            body = gzip_body(body)
            headers.append((b"content-encoding", b"gzip"))
        headers.append((b"content-length", b"%d" % len(body)))
        return headers, body

    # ------------------------------------------------ without an ASGI task
    def take(self, cycle, transport, default_headers):
        """Serve uvicorn's request ``cycle`` (its head read) here if it is a poll; False leaves it to the ASGI app.

        ``transport`` is the connection's, ``default_headers`` the server's
        (``date``, ``server``), written as uvicorn writes them.
        """
        scope = cycle.scope
        if scope["path"] != self.path or scope["method"] != "GET" or cycle.waiting_for_100_continue:
            return False
        try:
            scope["query_string"].decode()
        except UnicodeDecodeError:
            return False
        started = time.perf_counter()
        req = PollRequest(scope, self.context, self.options)
        try:
            self.guard.check(req)
            fields, timeout = poll_request(self.config, req)

            def answered(result):
                try:
                    if isinstance(result, Exception):
                        raise result
                    status, body, extra = 200, poll_body(result), {}
                except Exception as ex:
                    status, body, extra = errors.refusal(req, ex)
                _write(cycle, transport, default_headers, status, *self.shape(req, body, extra))
                access_log.record("GET", PATH, status, started)

            if not self.hub.request_nowait(OP_POLL, timeout, answered, **fields):
                return False  # the link is not up: the ASGI way waits for it
        except Exception as ex:
            status, body, extra = errors.refusal(req, ex)
            _write(cycle, transport, default_headers, status, *self.shape(req, body, extra))
            access_log.record("GET", PATH, status, started)
        return True


def _nothing():
    pass


def _write(cycle, transport, default_headers, status, headers, body):
    """What uvicorn's ``RequestResponseCycle.send`` does for a whole response, in one write.

    uvicorn would first wait while the transport's buffer is over its high
    mark; one answer of at most ``POLL_REPLY_BYTES`` (gzip aside) is written
    at once instead, as a poll has only the one answer to write.
    """
    if cycle.disconnected or cycle.response_started:  # the client left, or the gateway answered 503 when stopping
        return
    cycle.response_started = True
    content = [STATUS_LINE[status]]
    for name, value in default_headers:
        content += (name, b": ", value, b"\r\n")
    for name, value in headers:
        content += (name, b": ", value, b"\r\n")
    if not cycle.keep_alive:
        content.append(b"connection: close\r\n")
    content += (b"\r\n", body)
    transport.write(b"".join(content))
    cycle.response_complete = True
    cycle.message_event.set()
    if not cycle.keep_alive:
        transport.close()
    on_response, cycle.on_response = cycle.on_response, _nothing
    on_response()
