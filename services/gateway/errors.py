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


def error_json(message, code, field=None):
    """The seed's error shape as JSON bytes."""
    body = {"success": False, "error": message, "code": code}
    if field is not None:
        body["field"] = field
    return orjson.dumps(body)


def refusal(req, ex):
    """``(status, body, headers)`` answering ``ex`` (logged here): the one table of every error answer.

    The Falcon handlers below and the poll path ahead of Falcon
    (services/gateway/fastpoll.py) both answer from it.
    """
    if isinstance(ex, InputError):
        log.info("%s %s refused: %s", req.method, req.path, ex.message)
        return ex.status, error_json(ex.message, ex.code or CODE_BY_STATUS.get(ex.status, "bad_request"),
                                     ex.field), dict(ex.headers)
    if isinstance(ex, HubError):
        entry = protocol.ERRORS.get(ex.code, protocol.ERRORS["internal"])
        if entry.http_status >= 500:
            log.error("%s %s: hub failed: %s", req.method, req.path, ex.reason)
        else:
            log.info("%s %s refused by the hub: %s", req.method, req.path, ex.reason)
        headers = {}
        if entry.action == RETRY and entry.http_status == 429:
            retry_after = getattr(ex, "retry_after", None) or 5
            headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
        return entry.http_status, error_json(ex.reason, entry.code, ex.field), headers
    if isinstance(ex, HubUnavailable):
        log.warning("%s %s: %s", req.method, req.path, ex)
        return 503, error_json(f"the bridge hub is not available: {ex}", "hub_unavailable"), {"Retry-After": "1"}
    if isinstance(ex, falcon.HTTPError):
        status = ex.status_code
        message = ex.title or "error"
        if ex.description:
            message = f"{message}: {ex.description}"
        return status, error_json(message, CODE_BY_STATUS.get(status, f"http_{status}")), dict(ex.headers or {})
    log.exception("%s %s failed", req.method, req.path)
    return 500, error_json("internal server error", "internal"), {}


async def _answer(req, resp, ex, params, ws=None):
    """Falcon's error handler for every class ``install`` registers."""
    status, body, headers = refusal(req, ex)
    if resp is None:
        await _close_ws(ws, status)
        return
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = body
    for name, value in headers.items():
        resp.set_header(name, value)


input_error = hub_error = hub_unavailable = http_error = unexpected = _answer


def install(app):
    """Register every handler on ``app`` (most specific classes win)."""
    app.add_error_handler(Exception, unexpected)
    app.add_error_handler(falcon.HTTPError, http_error)
    app.add_error_handler(InputError, input_error)
    app.add_error_handler(HubError, hub_error)
    app.add_error_handler(HubUnavailable, hub_unavailable)
