"""The gateway's settings, read from ``BRIDGE_*`` environment variables: one row each (variable, kind,
default, bounds, help); ``GatewayConfig`` and ``load_config`` come from the rows."""

import os

from services import security, settings
from services.settings import Setting

SETTINGS = (
    Setting("BRIDGE_HTTP_HOST", "http_host", "str", "127.0.0.1", help="gateway listen address"),
    Setting("BRIDGE_HTTP_PORT", "http_port", "int", 5100, 0, 65535, "gateway port"),
    Setting("BRIDGE_HUB_RPC", "hub_rpc", "endpoint", settings.DEFAULT_HUB_RPC,
            help="hub request endpoint (hub binds, gateways connect)"),
    Setting("BRIDGE_HUB_TIMEOUT", "hub_timeout", "float", 3.0, 0.05, 60,
            "seconds the gateway waits for the hub (beyond a poll's hold)"),
    Setting("BRIDGE_POLL_MAX_WAIT", "poll_max_wait", "float", 25.0, 0, 300, "longest hold of a long-poll, seconds"),
    Setting("BRIDGE_MAX_BODY", "max_body", "int", 1024 * 1024, 1024, None, "largest request body, bytes"),
    Setting("BRIDGE_GATEWAY_WORKERS", "workers", "int", 2, 1, 64, "gunicorn worker processes (POSIX)"),
    Setting("BRIDGE_ALLOWED_HOSTS", "allowed_hosts", "list", (), help="extra names accepted in Host"),
    Setting("BRIDGE_ALLOWED_ORIGINS", "allowed_origins", "list", (), help="web origins allowed to call the API"),
    # operator routes need "Authorization: Bearer <token>" when set (docs/SECURITY.md)
    Setting("BRIDGE_ADMIN_TOKEN", "admin_token", "str", None, help="bearer token for operator routes"),
    # decided here, where requests enter, for every process (docs/SECURITY.md)
    Setting("BRIDGE_REQUIRE_CLIENT_SECRET", "require_client_secret", "bool", False,
            help="clients must prove their id with the handshake's client_secret",
            default_from=security.require_client_secret_default, shown="on when off loopback"),
    Setting("BRIDGE_MAX_MESSAGE_BYTES", "max_message_bytes", "int", 256 * 1024, 256, None,
            "largest message a client may send"),
    Setting("BRIDGE_TLS_CERT", "tls_cert", "str", None, help="HTTPS certificate"),
    Setting("BRIDGE_TLS_KEY", "tls_key", "str", None, help="HTTPS key"),
    Setting("BRIDGE_CURVE_DIR", "curve_dir", "str", None, help="ZeroMQ CURVE keys (python -m services.curve DIR)"),
    # a silent peer is dropped within two intervals
    Setting("BRIDGE_WS_PING_INTERVAL", "ws_ping_interval", "float", 20.0, 0.5, 600,
            "WebSocket ping interval, seconds"),
    Setting("BRIDGE_SSE_KEEPALIVE", "sse_keepalive", "float", 15.0, 0.5, 300,
            "seconds between SSE keepalive comments"),
    Setting("BRIDGE_HEADER_TIMEOUT", "header_timeout", "float", 10.0, 0.1, 300,
            "seconds to send a complete request head (services/gateway/worker.py)"),
)


def _poll_reply_margin(self):
    """How much longer than the hub's hold the gateway waits for a poll's reply."""
    return self.hub_timeout


GatewayConfig = settings.config_class(
    "GatewayConfig", __name__, SETTINGS, "Everything the gateway needs; see docs/OPERATOR.md's configuration table.",
    {"poll_reply_margin": property(_poll_reply_margin)},
)


def load_config(environ=os.environ):
    """Build a ``GatewayConfig`` from the environment; raises ``ConfigError`` naming a bad key."""
    config = settings.read_config(GatewayConfig, SETTINGS, environ)
    security.check_gateway(config)
    return config
