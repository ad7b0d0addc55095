"""Translating failures into HTTP once, at the gateway's boundary.

Every error answer has the seed's shape ``{"success": false, "error": ...}``
plus a ``code`` from the protocol's table; a 500 never carries the exception.
"""

import logging
import math

import falcon
import orjson

from services import protocol
from services.endings import CODE_BY_STATUS, RETRY
from services.gateway.hub_client import HubError, HubUnavailable
from services.gateway.inputs import InputError

log = logging.getLogger(__name__)

# Falcon's convention for refusing a WebSocket: the HTTP status + 3000 as the close code
# (before accept, the server answers the handshake with 403).
WS_CLOSE_OFFSET = 3000


async def _close_ws(ws, status):
    try:
        await ws.close(WS_CLOSE_OFFSET + status)
    except Exception:  # the peer may be gone already
        log.debug("closing a refused WebSocket failed", exc_info=True)


def error_body(resp, status, message, code, field=None):
    """Write the seed's error shape to ``resp``."""
    body = {"success": False, "error": message, "code": code}
    if field is not None:
        body["field"] = field
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = orjson.dumps(body)


async def input_error(req, resp, ex, params, ws=None):
    log.info("%s %s refused: %s", req.method, req.path, ex.message)
    if resp is None:
        await _close_ws(ws, ex.status)
        return
    error_body(resp, ex.status, ex.message, ex.code or CODE_BY_STATUS.get(ex.status, "bad_request"), ex.field)
    for name, value in ex.headers.items():
        resp.set_header(name, value)


async def hub_error(req, resp, ex, params, ws=None):
    entry = protocol.ERRORS.get(ex.code, protocol.ERRORS["internal"])
    if entry.http_status >= 500:
        log.error("%s %s: hub failed: %s", req.method, req.path, ex.reason)
    else:
        log.info("%s %s refused by the hub: %s", req.method, req.path, ex.reason)
    if resp is None:
        await _close_ws(ws, entry.http_status)
        return
    error_body(resp, entry.http_status, ex.reason, entry.code, ex.field)
    if entry.action == RETRY and entry.http_status == 429:
        retry_after = getattr(ex, "retry_after", None) or 5
        resp.set_header("Retry-After", str(max(1, math.ceil(retry_after))))


async def hub_unavailable(req, resp, ex, params, ws=None):
    log.warning("%s %s: %s", req.method, req.path, ex)
    if resp is None:
        await _close_ws(ws, 503)
        return
    error_body(resp, 503, f"the bridge hub is not available: {ex}", "hub_unavailable")
    resp.set_header("Retry-After", "1")


async def http_error(req, resp, ex, params, ws=None):
    if resp is None:
        await _close_ws(ws, ex.status_code)
        return
    status = ex.status_code
    message = ex.title or "error"
    if ex.description:
        message = f"{message}: {ex.description}"
    error_body(resp, ex.status, message, CODE_BY_STATUS.get(status, f"http_{status}"))
    if ex.headers:
        for name, value in ex.headers.items():
            resp.set_header(name, value)


async def unexpected(req, resp, ex, params, ws=None):
    log.exception("%s %s failed", req.method, req.path)
    if resp is None:
        await _close_ws(ws, 500)
        return
    error_body(resp, 500, "internal server error", "internal")


def install(app):
    """Register every handler on ``app`` (most specific classes win)."""
    app.add_error_handler(Exception, unexpected)
    app.add_error_handler(falcon.HTTPError, http_error)
    app.add_error_handler(InputError, input_error)
    app.add_error_handler(HubError, hub_error)
    app.add_error_handler(HubUnavailable, hub_unavailable)
