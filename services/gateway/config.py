"""The gateway's settings, read from ``BRIDGE_*`` environment variables."""

import os
from dataclasses import dataclass

from services import security, settings


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the gateway needs; see the README's configuration table."""

    http_host: str = "127.0.0.1"
    http_port: int = 5100
    hub_rpc: str = settings.DEFAULT_HUB_RPC
    hub_timeout: float = 3.0
    poll_max_wait: float = 25.0
    max_body: int = 1024 * 1024
    workers: int = 2
    allowed_hosts: tuple = ()
    allowed_origins: tuple = ()
    admin_token: str = None  # operator routes need "Authorization: Bearer <token>" when set (docs/SECURITY.md)
    require_client_secret: bool = False  # decided here, where requests enter, for every process (docs/SECURITY.md)
    max_message_bytes: int = 256 * 1024
    tls_cert: str = None
    tls_key: str = None
    curve_dir: str = None  # ZeroMQ CURVE keys (python -m services.curve DIR)
    ws_ping_interval: float = 20.0  # WebSocket protocol pings; a silent peer is dropped within two intervals
    sse_keepalive: float = 15.0  # a ": keepalive" comment when an SSE stream was idle this long
    header_timeout: float = 10.0  # seconds to send a complete request head (services/gateway/worker.py)

    @property
    def poll_reply_margin(self):
        """How much longer than the hub's hold the gateway waits for a poll's reply."""
        return self.hub_timeout


def load_config(environ=os.environ):
    """Build a ``GatewayConfig`` from the environment; raises ``ConfigError`` naming a bad key."""
    config = _read(environ)
    security.check_gateway(config)
    return config


def _read(environ):
    return GatewayConfig(
        http_host=settings.env_str(environ, "BRIDGE_HTTP_HOST", "127.0.0.1"),
        http_port=settings.env_int(environ, "BRIDGE_HTTP_PORT", 5100, minimum=0, maximum=65535),
        hub_rpc=settings.env_endpoint(environ, "BRIDGE_HUB_RPC", settings.DEFAULT_HUB_RPC),
        hub_timeout=settings.env_float(environ, "BRIDGE_HUB_TIMEOUT", 3.0, minimum=0.05, maximum=60),
        poll_max_wait=settings.env_float(environ, "BRIDGE_POLL_MAX_WAIT", 25.0, minimum=0, maximum=300),
        max_body=settings.env_int(environ, "BRIDGE_MAX_BODY", 1024 * 1024, minimum=1024),
        workers=settings.env_int(environ, "BRIDGE_GATEWAY_WORKERS", 2, minimum=1, maximum=64),
        allowed_hosts=settings.env_list(environ, "BRIDGE_ALLOWED_HOSTS", ()),
        allowed_origins=settings.env_list(environ, "BRIDGE_ALLOWED_ORIGINS", ()),
        admin_token=settings.env_str(environ, "BRIDGE_ADMIN_TOKEN", None),
        require_client_secret=settings.env_bool(
            environ, "BRIDGE_REQUIRE_CLIENT_SECRET", security.require_client_secret_default(environ)
        ),
        max_message_bytes=settings.env_int(environ, "BRIDGE_MAX_MESSAGE_BYTES", 256 * 1024, minimum=256),
        tls_cert=settings.env_str(environ, "BRIDGE_TLS_CERT", None),
        tls_key=settings.env_str(environ, "BRIDGE_TLS_KEY", None),
        curve_dir=settings.env_str(environ, "BRIDGE_CURVE_DIR", None),
        ws_ping_interval=settings.env_float(environ, "BRIDGE_WS_PING_INTERVAL", 20.0, minimum=0.5, maximum=600),
        sse_keepalive=settings.env_float(environ, "BRIDGE_SSE_KEEPALIVE", 15.0, minimum=0.5, maximum=300),
        header_timeout=settings.env_float(environ, "BRIDGE_HEADER_TIMEOUT", 10.0, minimum=0.1, maximum=300),
    )
