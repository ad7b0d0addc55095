"""Talking to the running gateway over HTTP (stdlib ``http.client``: no dependency for a CLI).

Every request has a timeout. ``NotRunning`` means nothing answered at the
address; ``ApiError`` carries the gateway's ``{"success": false, ...}``.
"""

import http.client
import json
import os
import socket

from services import settings


class NotRunning(Exception):
    """Nothing answers at the gateway's address."""


class ApiError(Exception):
    """The gateway answered with an error status; ``body`` is its parsed JSON (or ``{}``)."""

    def __init__(self, status, body):
        self.status = status
        self.body = body if isinstance(body, dict) else {}
        super().__init__(self.body.get("error") or f"HTTP {status}")

    @property
    def code(self):
        return self.body.get("code", f"http_{self.status}")


def default_host(environ=os.environ):
    """The gateway's host from BRIDGE_HTTP_HOST; a wildcard host means loopback."""
    host = settings.env_str(environ, "BRIDGE_HTTP_HOST", "127.0.0.1")
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def default_port(environ=os.environ):
    """The gateway's port from BRIDGE_HTTP_PORT; ``ConfigError`` (naming it) when it is not a port."""
    return settings.env_int(environ, "BRIDGE_HTTP_PORT", 5100, minimum=0, maximum=65535)


def default_address(environ=os.environ):
    """``(host, port)`` of the gateway from BRIDGE_HTTP_HOST/PORT."""
    return default_host(environ), default_port(environ)


class Bridge:
    """One gateway: JSON requests with the admin token (BRIDGE_ADMIN_TOKEN) when it is set."""

    def __init__(self, host, port, token=None, timeout=10.0):
        self.host = host
        self.port = port
        self.token = token
        self.timeout = timeout

    @property
    def address(self):
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def headers(self, extra=None):
        hdrs = {"Accept": "application/json", "User-Agent": "lrbridge-cli"}
        if self.token:
            hdrs["Authorization"] = f"Bearer {self.token}"
        hdrs.update(extra or {})
        return hdrs

    def connect(self, timeout=None):
        """An open ``HTTPConnection`` (raises ``NotRunning`` when nothing listens)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout or self.timeout)
        try:
            conn.connect()
        except (ConnectionError, socket.timeout, OSError) as ex:
            conn.close()
            raise NotRunning(f"nothing answers at {self.address} ({ex.__class__.__name__})") from None
        return conn

    def request(self, method, path, body=None, timeout=None, headers=None):
        """``(status, parsed JSON or None, response headers)``; raises ``NotRunning``."""
        conn = self.connect(timeout)
        try:
            data = None
            hdrs = self.headers(headers)
            if body is not None:
                data = json.dumps(body).encode()
                hdrs["Content-Type"] = "application/json"
            try:
                conn.request(method, path, body=data, headers=hdrs)
                resp = conn.getresponse()
                raw = resp.read()
            except (ConnectionError, socket.timeout, http.client.HTTPException) as ex:
                raise NotRunning(f"no answer from {self.address} ({ex.__class__.__name__})") from None
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = None
            return resp.status, parsed, {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()

    def call(self, method, path, body=None, timeout=None, headers=None):
        """The parsed JSON of a 2xx answer; raises ``ApiError`` for any other status."""
        status, parsed, _ = self.request(method, path, body, timeout, headers)
        if not 200 <= status < 300:
            raise ApiError(status, parsed)
        return parsed if parsed is not None else {}

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body if body is not None else {}, **kw)
