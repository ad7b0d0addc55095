"""One log line per request: method, path, status, duration (polls that succeed at DEBUG)."""

import logging
import time

log = logging.getLogger("gateway.access")


def record(method, path, status, started):
    """Log one request that began at ``started`` (``time.perf_counter()``) and was answered with ``status``."""
    level = logging.DEBUG if (path == "/ws/poll" and str(status).startswith("2")) else logging.INFO
    if log.isEnabledFor(level):
        log.log(level, "%s %s %s %.1fms", method, path, status, (time.perf_counter() - started) * 1000)


class AccessLog:
    """Falcon middleware that times each request."""

    async def process_request(self, req, resp):
        req.context.started = time.perf_counter()

    async def process_response(self, req, resp, resource, req_succeeded):
        started = getattr(req.context, "started", None)
        if started is None:
            return
        record(req.method, req.path, resp.status_code if hasattr(resp, "status_code") else resp.status, started)
