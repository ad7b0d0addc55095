"""gzip for the responses that benefit from it (``/ws/poll`` bodies, SSE streams), only when asked.

A client gets gzip only when its request says ``Accept-Encoding: gzip``
(with a non-zero q); Lightroom's LrHttp does not, so the plugin always gets
plain bytes. Small bodies stay plain: gzip would make them larger.
"""

import gzip
import zlib

MIN_GZIP_BYTES = 256
GZIP_PATHS = ("/ws/poll",)


def accepts_gzip(req):
    """True when the request's Accept-Encoding allows gzip."""
    header = req.get_header("Accept-Encoding")
    if not header:
        return False
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() not in ("gzip", "x-gzip"):
            continue
        q = params.strip().lower()
        if q.startswith("q="):
            try:
                return float(q[2:]) > 0
            except ValueError:
                return False
        return True
    return False


class GzipStream:
    """Compresses a stream chunk by chunk; each chunk is flushed so the client can read it at once."""

    def __init__(self, level=6):
        self._z = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: gzip header and trailer

    def __call__(self, data):
        return self._z.compress(data) + self._z.flush(zlib.Z_SYNC_FLUSH)


def plain(data):
    """The identity encoding, for clients that did not ask for gzip."""
    return data


def gzip_body(data):
    """A whole response body, gzipped."""
    return gzip.compress(data, 6)


class GzipResponses:
    """Falcon middleware: gzip ``/ws/poll`` bodies for clients that send ``Accept-Encoding: gzip``."""

    async def process_response(self, req, resp, resource, req_succeeded):
        if req.path not in GZIP_PATHS:
            return
        resp.append_header("Vary", "Accept-Encoding")
        data = resp.data
        if data is None or len(data) < MIN_GZIP_BYTES or not accepts_gzip(req):
            return
        resp.data = gzip_body(data)
        resp.set_header("Content-Encoding", "gzip")
