"""The live dashboard: ``/ws/dashboard`` and its static files, shipped in the package.

Plain HTML, CSS and JavaScript (no build step, nothing fetched from the
internet). The page joins the bridge as a client of type ``dashboard``,
subscribes to the default channels, and reads the operator routes
(``/ws/clients``, ``/ws/status``, ``/ws/health``) once a second.
"""

from pathlib import Path

import falcon

STATIC = Path(__file__).resolve().parent / "static"
PREFIX = "/ws/dashboard/static"


class Page:
    """GET /ws/dashboard: the dashboard's HTML."""

    def __init__(self):
        self.html = (STATIC / "index.html").read_bytes()

    async def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_HTML
        resp.set_header("Cache-Control", "no-cache")
        # The page loads only its own files and talks only to this gateway.
        resp.set_header(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'",
        )
        resp.data = self.html


def install(app):
    """Add the page and its static files to ``app``."""
    app.add_route("/ws/dashboard", Page())
    app.add_static_route(PREFIX, str(STATIC))
