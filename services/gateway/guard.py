"""Refuse requests that come from a web page rather than a local program.

A bridge on 127.0.0.1 is reachable from any page the photographer opens: a
foreign ``Host`` means DNS rebinding, a foreign ``Origin`` or a cross-site
``Sec-Fetch-Site`` means a cross-site request. Both are refused before any
resource runs, so no state changes.
"""

import logging
from urllib.parse import urlsplit

from services.gateway.inputs import InputError

log = logging.getLogger(__name__)

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")


class HostOriginGuard:
    """Falcon middleware: Host must name this machine, Origin (if any) must be allowed."""

    def __init__(self, config):
        hosts = set(LOOPBACK_NAMES) | {h.lower() for h in config.allowed_hosts}
        if config.http_host not in ("0.0.0.0", "::", ""):
            hosts.add(config.http_host.lower())
        self.hosts = hosts
        self.origins = {o.rstrip("/").lower() for o in config.allowed_origins}

    def host_allowed(self, host_header):
        if not host_header:
            return False
        host = host_header.strip().lower()
        if host.startswith("["):
            name = host.split("]")[0] + "]"
        else:
            name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        return name in self.hosts

    def origin_allowed(self, origin, host_header):
        origin = origin.rstrip("/").lower()
        if origin in self.origins:
            return True
        parts = urlsplit(origin)
        # The gateway's own pages (the dashboard) are same-origin.
        return parts.scheme in ("http", "https") and parts.netloc == (host_header or "").strip().lower()

    async def process_request(self, req, resp):
        host = req.get_header("Host")
        if not self.host_allowed(host):
            raise InputError(421, f"requests must be addressed to this machine, not {str(host)[:80]!r}", "Host")
        origin = req.get_header("Origin")
        if origin is not None and not self.origin_allowed(origin, host):
            raise InputError(403, "cross-origin requests are not allowed", "Origin")
        if req.get_header("Sec-Fetch-Site") == "cross-site" and origin is None:
            raise InputError(403, "cross-site requests are not allowed", "Sec-Fetch-Site")
