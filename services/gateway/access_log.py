"""One log line per request: method, path, status, duration (polls that succeed at DEBUG)."""

import logging
import time

log = logging.getLogger("gateway.access")


class AccessLog:
    """Falcon middleware that times each request."""

    async def process_request(self, req, resp):
        req.context.started = time.perf_counter()

    async def process_response(self, req, resp, resource, req_succeeded):
        started = getattr(req.context, "started", None)
        if started is None:
            return
        ms = (time.perf_counter() - started) * 1000
        status = resp.status_code if hasattr(resp, "status_code") else resp.status
        level = logging.DEBUG if (req.path == "/ws/poll" and str(status).startswith("2")) else logging.INFO
        if log.isEnabledFor(level):
            log.log(level, "%s %s %s %.1fms", req.method, req.path, status, ms)
