"""What a bind off loopback requires, checked by every service before it listens.

Bound to loopback (the default) the bridge trusts the local machine; bound to
anything else, the gateway needs BRIDGE_ADMIN_TOKEN for its operator routes
and per-client secrets, and a ZeroMQ endpoint needs CURVE keys
(BRIDGE_CURVE_DIR). docs/SECURITY.md explains each rule.
"""

import ipaddress

from services.settings import ConfigError

MIN_TOKEN_LENGTH = 16


def is_loopback_host(host):
    """True for ``localhost`` and any loopback address (127.0.0.0/8, ::1), bracketed or not."""
    host = (host or "").strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def endpoint_is_loopback(endpoint):
    """True for a ZeroMQ endpoint only this machine can reach (tcp on loopback, ipc, inproc)."""
    scheme, sep, rest = endpoint.partition("://")
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp" or not sep:
        return False
    host = rest.split(";")[-1].rsplit(":", 1)[0]
    return is_loopback_host(host)


def require_client_secret_default(environ):
    """Per-client secrets are required by default when the gateway listens off loopback.

    Read by the gateway alone, from its own environment: the gateway is where
    a request enters, so it knows whether the bridge is exposed; the hub may
    run with another environment on another machine (docs/SECURITY.md).
    """
    return not is_loopback_host(environ.get("BRIDGE_HTTP_HOST") or "127.0.0.1")


def check_gateway(config):
    """Refuse a gateway configuration that would expose the bridge without protection."""
    token = config.admin_token
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"BRIDGE_ADMIN_TOKEN must be at least {MIN_TOKEN_LENGTH} characters")
    if not is_loopback_host(config.http_host) and not token:
        raise ConfigError(
            f"BRIDGE_HTTP_HOST={config.http_host} is not a loopback address: set BRIDGE_ADMIN_TOKEN "
            "(operator routes then need 'Authorization: Bearer <token>'), see docs/SECURITY.md"
        )
    if bool(config.tls_cert) != bool(config.tls_key):
        raise ConfigError("BRIDGE_TLS_CERT and BRIDGE_TLS_KEY must be set together")
    if not config.curve_dir and not endpoint_is_loopback(config.hub_rpc):
        raise ConfigError(f"BRIDGE_HUB_RPC={config.hub_rpc} is not on loopback: set BRIDGE_CURVE_DIR (CURVE keys)")


def check_bind(key, endpoint, curve_dir):
    """A ZeroMQ bind off loopback needs CURVE keys; raises ``ConfigError`` naming the setting."""
    if not curve_dir and not endpoint_is_loopback(endpoint):
        raise ConfigError(
            f"{key}={endpoint} is not on loopback: set BRIDGE_CURVE_DIR to CURVE keys "
            "(python -m services.curve DIR makes them), see docs/SECURITY.md"
        )
