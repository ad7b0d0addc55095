"""The hub's settings, read from ``BRIDGE_*`` environment variables."""

import os
from dataclasses import dataclass

from services import paths, security, settings

# The default store is state/hub.sqlite3 in the per-user data folder (services/paths.py);
# ':memory:' keeps nothing across restarts.


@dataclass(frozen=True)
class HubConfig:
    """Everything the hub needs to start; see the README's configuration table."""

    rpc_endpoint: str = settings.DEFAULT_HUB_RPC
    events_endpoint: str = settings.DEFAULT_EVENTS_OUT
    client_events_endpoint: str = settings.DEFAULT_CLIENT_EVENTS
    notifier_rpc_endpoint: str = settings.DEFAULT_NOTIFIER_RPC  # replay requests to the notifier (we connect)
    queue_size: int = 100
    stale_seconds: float = 300.0
    poll_max_wait: float = 25.0
    poll_batch: int = 1000
    max_clients: int = 10000
    # docs/SECURITY.md: rates (per second; 0 = unlimited) and channel limits; whether a client must give
    # its secret is the gateway's BRIDGE_REQUIRE_CLIENT_SECRET, decided where requests enter
    handshake_rate: float = 20.0
    handshake_burst: int = 200
    send_rate: float = 500.0
    send_burst: int = 1000
    max_channels_per_client: int = 64
    max_channels_per_subscribe: int = 32
    curve_dir: str = None
    # docs/DURABILITY.md: the store, channel history, job states
    store: str = ":memory:"
    store_sync: str = "normal"
    history_size: int = 1000
    history_seconds: float = 86400.0
    history_channels: int = 1000
    history_max_bytes: int = 256 * 2**20
    jobs_max: int = 1000
    jobs_keep_seconds: float = 86400.0
    job_stale_seconds: float = 120.0  # a running job with no event for this long is shown as stalled


def load_config(environ=os.environ):
    """Build a ``HubConfig`` from the environment; raises ``ConfigError`` naming a bad key."""
    config = _read(environ)
    security.check_bind("BRIDGE_HUB_RPC", config.rpc_endpoint, config.curve_dir)
    security.check_bind("BRIDGE_CLIENT_EVENTS", config.client_events_endpoint, config.curve_dir)
    return config


def _read(environ):
    return HubConfig(
        rpc_endpoint=settings.env_endpoint(environ, "BRIDGE_HUB_RPC", settings.DEFAULT_HUB_RPC),
        events_endpoint=settings.env_endpoint(environ, "BRIDGE_EVENTS_OUT", settings.DEFAULT_EVENTS_OUT),
        client_events_endpoint=settings.env_endpoint(environ, "BRIDGE_CLIENT_EVENTS", settings.DEFAULT_CLIENT_EVENTS),
        notifier_rpc_endpoint=settings.env_endpoint(environ, "BRIDGE_NOTIFIER_RPC", settings.DEFAULT_NOTIFIER_RPC),
        queue_size=settings.env_int(environ, "BRIDGE_QUEUE_SIZE", 100, minimum=1, maximum=1_000_000),
        stale_seconds=settings.env_float(environ, "BRIDGE_STALE_SECONDS", 300.0, minimum=0.1),
        poll_max_wait=settings.env_float(environ, "BRIDGE_POLL_MAX_WAIT", 25.0, minimum=0, maximum=300),
        poll_batch=settings.env_int(environ, "BRIDGE_POLL_BATCH", 1000, minimum=1, maximum=100_000),
        max_clients=settings.env_int(environ, "BRIDGE_MAX_CLIENTS", 10000, minimum=1),
        handshake_rate=settings.env_float(environ, "BRIDGE_HANDSHAKE_RATE", 20.0, minimum=0),
        handshake_burst=settings.env_int(environ, "BRIDGE_HANDSHAKE_BURST", 200, minimum=1),
        send_rate=settings.env_float(environ, "BRIDGE_SEND_RATE", 500.0, minimum=0),
        send_burst=settings.env_int(environ, "BRIDGE_SEND_BURST", 1000, minimum=1),
        max_channels_per_client=settings.env_int(environ, "BRIDGE_MAX_CHANNELS_PER_CLIENT", 64, minimum=1),
        max_channels_per_subscribe=settings.env_int(environ, "BRIDGE_MAX_CHANNELS_PER_SUBSCRIBE", 32, minimum=1),
        curve_dir=settings.env_str(environ, "BRIDGE_CURVE_DIR", None),
        store=settings.env_str(environ, "BRIDGE_STORE", paths.default_store(environ)),
        store_sync=_store_sync(environ),
        history_size=settings.env_int(environ, "BRIDGE_HISTORY_SIZE", 1000, minimum=0, maximum=1_000_000),
        history_seconds=settings.env_float(environ, "BRIDGE_HISTORY_SECONDS", 86400.0, minimum=0),
        history_channels=settings.env_int(environ, "BRIDGE_HISTORY_CHANNELS", 1000, minimum=1),
        history_max_bytes=settings.env_int(environ, "BRIDGE_HISTORY_MAX_BYTES", 256 * 2**20, minimum=0),
        jobs_max=settings.env_int(environ, "BRIDGE_JOBS_MAX", 1000, minimum=1),
        jobs_keep_seconds=settings.env_float(environ, "BRIDGE_JOBS_KEEP_SECONDS", 86400.0, minimum=0),
        job_stale_seconds=settings.env_float(environ, "BRIDGE_JOB_STALE_SECONDS", 120.0, minimum=0.1),
    )


def _store_sync(environ):
    return settings.env_choice(environ, "BRIDGE_STORE_SYNC", "normal", ("normal", "full"))
