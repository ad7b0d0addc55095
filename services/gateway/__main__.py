"""Serve the gateway with uvicorn alone: ``python -m services.gateway`` (one process; no gunicorn)."""

import sys

import uvicorn

from services import parentwatch
from services.gateway.config import load_config
from services.gateway.websocket import uvicorn_ws_options
from services.gateway.worker import ORPHAN_GRACE, set_header_timeout, stop_now
from services.settings import ConfigError


def main():
    try:
        config = load_config()
    except ConfigError as ex:
        print(f"gateway: bad configuration: {ex}", file=sys.stderr)
        return 2
    set_header_timeout(config.header_timeout)
    server = uvicorn.Server(uvicorn.Config(
        "services.gateway.asgi:app", host=config.http_host, port=config.http_port, log_level="warning",
        http="services.gateway.worker:StrictHttpToolsProtocol", proxy_headers=False,
        ssl_certfile=config.tls_cert, ssl_keyfile=config.tls_key, **uvicorn_ws_options(config),
    ))

    def orphaned():  # no signal: on Windows SIGTERM through os.kill would end the process at once
        server.config.timeout_graceful_shutdown = ORPHAN_GRACE
        stop_now()
        server.should_exit = True

    parentwatch.watch_from_env(on_orphan=orphaned, name="gateway")
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
