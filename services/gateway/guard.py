"""Refuse requests that come from a web page rather than a local program.

A bridge on 127.0.0.1 is reachable from any page the photographer opens: a
foreign ``Host`` (or absolute-form request line) means DNS rebinding, a
foreign ``Origin`` or a cross-site ``Sec-Fetch-Site`` means a cross-site
request, and a POST whose body is not ``application/json`` is what an HTML
form or a CORS "simple request" sends. All are refused before routing, so no
resource runs and no state changes. docs/SECURITY.md lists the rules.

The same checks run for WebSocket handshakes (``process_request_ws``): Falcon
does not call ``process_request`` for them.
"""

import logging
import re

from services.gateway.inputs import InputError

log = logging.getLogger(__name__)

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
WILDCARD_BINDS = ("0.0.0.0", "::", "")
BODY_METHODS = ("POST", "PUT", "PATCH")
CROSS_SITE = ("cross-site", "same-site")  # our own pages are same-origin; anything else is another app

# host = reg-name or IPv4 (letters, digits, dots, hyphens) | [IPv6]; then an optional :port.
_AUTHORITY = re.compile(r"^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::([0-9]{1,5}))?$")

# Scope key set by services.gateway.worker for an absolute-form request line.
ABSOLUTE_FORM_KEY = "bridge.absolute_form"


def _bracket(name):
    return f"[{name}]" if ":" in name and not name.startswith("[") else name


class HostOriginGuard:
    """Falcon middleware: Host must name this server, Origin (if any) must be allowed, POST bodies JSON."""

    def __init__(self, config):
        self.port = config.http_port
        self.names = set(LOOPBACK_NAMES)
        self.pairs = set()  # explicit "name:port" entries
        for entry in config.allowed_hosts:
            entry = entry.strip().lower()
            match = _AUTHORITY.match(entry)
            if match is None:
                self.names.add(_bracket(entry))  # a bare IPv6 address
            elif match.group(2):
                self.pairs.add((match.group(1), int(match.group(2))))
            else:
                self.names.add(match.group(1))
        if config.http_host not in WILDCARD_BINDS:
            self.names.add(_bracket(config.http_host.lower()))
        self.origins = {o.rstrip("/").lower() for o in config.allowed_origins}
        self._answers = {}  # (authority, scheme) -> allowed

    # ------------------------------------------------------------ checks
    def authority_allowed(self, authority, scheme="http"):
        """True when ``authority`` (a Host value) names this server: an allowed name with our port.

        Answers are remembered (a bounded table): every request asks, nearly
        always with the same Host.
        """
        key = (authority, scheme)
        known = self._answers.get(key)
        if known is None:
            if len(self._answers) >= 256:
                self._answers.clear()
            known = self._answers[key] = self._authority_allowed(authority, scheme)
        return known

    def _authority_allowed(self, authority, scheme):
        if not authority:
            return False
        match = _AUTHORITY.match(authority.strip().lower())
        if match is None:
            return False
        name, port = match.group(1), match.group(2)
        port = int(port) if port else (443 if scheme in ("https", "wss") else 80)
        if (name, port) in self.pairs:
            return True
        return name in self.names and port == self.port

    def origin_allowed(self, origin):
        """True for a configured origin, or a page served by this server itself."""
        origin = origin.strip().rstrip("/").lower()
        if origin in self.origins:
            return True
        scheme, sep, authority = origin.partition("://")
        return bool(sep) and scheme in ("http", "https") and "/" not in authority and \
            self.authority_allowed(authority, scheme)

    def check(self, req):
        """Raise ``InputError`` (421 or 403) for a request that did not come from a local program."""
        scope = req.scope
        hosts = [value for name, value in scope.get("headers", ()) if name == b"host"]
        scheme = scope.get("scheme", "http")
        host = hosts[0].decode("latin-1") if len(hosts) == 1 else None
        if not self.authority_allowed(host, scheme):
            shown = "missing" if not hosts else ("repeated" if len(hosts) > 1 else repr(host[:80]))
            raise InputError(421, f"requests must be addressed to this machine (Host {shown})", "Host", "misdirected")
        target = scope.get(ABSOLUTE_FORM_KEY)
        raw_path = scope.get("raw_path") or b"/"
        if target is None and raw_path[:1] not in (b"/", b"*"):
            target = raw_path.decode("latin-1")  # the h11 server passes the whole absolute-form target
        if target is not None:
            _, _, rest = target.partition("://")
            authority = rest.split("/", 1)[0].split("?", 1)[0]
            if not self.authority_allowed(authority, scheme):
                raise InputError(421, "the request line names another server", "Host", "misdirected")
        origin = req.get_header("Origin")
        if origin is not None and not self.origin_allowed(origin):
            raise InputError(403, "cross-origin requests are not allowed", "Origin", "forbidden")
        if req.get_header("Sec-Fetch-Site") in CROSS_SITE and origin is None:
            raise InputError(403, "cross-site requests are not allowed", "Sec-Fetch-Site", "forbidden")

    def check_body_type(self, req):
        """POST bodies must be JSON: a form or a text/plain "simple request" is refused with 415."""
        if req.method not in BODY_METHODS:
            return
        media = (req.content_type or "").split(";", 1)[0].strip().lower()
        if media != "application/json":
            raise InputError(415, "request bodies must be sent as Content-Type: application/json",
                             "Content-Type", "unsupported_media_type")

    # ------------------------------------------------------- middleware
    async def process_request(self, req, resp):
        self.check(req)
        self.check_body_type(req)

    async def process_request_ws(self, req, ws):
        self.check(req)

    async def process_response(self, req, resp, resource, req_succeeded):
        """CORS headers only for a configured dashboard origin; never ``*``, never Private-Network."""
        for name, value in self.cors_headers(req):
            if name == "Vary":
                resp.append_header(name, value)
            else:
                resp.set_header(name, value)

    def cors_headers(self, req):
        """The CORS headers answering ``req`` (``Vary`` to be appended): none unless its Origin is configured."""
        origin = req.get_header("Origin")
        if origin is None or origin.strip().rstrip("/").lower() not in self.origins:
            return ()
        headers = [("Access-Control-Allow-Origin", origin.strip()), ("Vary", "Origin")]
        if req.method == "OPTIONS" and req.get_header("Access-Control-Request-Method"):
            headers += [("Access-Control-Allow-Methods", "GET, POST"),
                        ("Access-Control-Allow-Headers", "Content-Type, Authorization, X-Client-Secret"),
                        ("Access-Control-Max-Age", "600")]
        return headers
