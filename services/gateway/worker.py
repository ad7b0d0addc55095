"""The gunicorn worker and HTTP protocol the gateway runs on.

uvicorn's httptools protocol drops the authority of an absolute-form request
line (``GET http://evil.example/ws/status HTTP/1.1``) before the app sees it,
and HTTP says the server must then ignore ``Host`` in its favour. This
protocol keeps the target in the ASGI scope (``bridge.absolute_form``) so the
Host guard can refuse a foreign one.
"""

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
try:
    from uvicorn_worker import UvicornWorker
except ImportError:  # Windows: no gunicorn; `python -m services.gateway` uses only the protocol below
    UvicornWorker = object

from services.gateway.guard import ABSOLUTE_FORM_KEY


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


class StrictHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, remembering an absolute-form request target.

    Each response also goes out in one write (``_OneWriteResponse``).
    """

    def on_headers_complete(self):
        url = self.url
        if url[:1] not in (b"/", b"*") and not self.parser.should_upgrade():
            self.scope[ABSOLUTE_FORM_KEY] = url.decode("latin-1")
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not before and cycle is not None:  # a new request (not a WebSocket upgrade)
            cycle.transport = _OneWriteResponse(self.transport, self.loop)


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
