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


class StrictHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, remembering an absolute-form request target."""

    def on_headers_complete(self):
        url = self.url
        if url[:1] not in (b"/", b"*") and not self.parser.should_upgrade():
            self.scope[ABSOLUTE_FORM_KEY] = url.decode("latin-1")
        super().on_headers_complete()


class GatewayWorker(UvicornWorker):
    """gunicorn's uvicorn worker with the strict protocol."""

    CONFIG_KWARGS = {"loop": "auto", "http": "services.gateway.worker:StrictHttpToolsProtocol"}
