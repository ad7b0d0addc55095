"""Serve the gateway with uvicorn alone: ``python -m services.gateway`` (one process; no gunicorn)."""

import sys

import uvicorn

from services.gateway.config import load_config
from services.gateway.websocket import uvicorn_ws_options
from services.settings import ConfigError


def main():
    try:
        config = load_config()
    except ConfigError as ex:
        print(f"gateway: bad configuration: {ex}", file=sys.stderr)
        return 2
    uvicorn.run(
        "services.gateway.asgi:app", host=config.http_host, port=config.http_port, log_level="warning",
        http="services.gateway.worker:StrictHttpToolsProtocol", proxy_headers=False,
        ssl_certfile=config.tls_cert, ssl_keyfile=config.tls_key, **uvicorn_ws_options(config),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
