"""The hub's settings, read from ``BRIDGE_*`` environment variables."""

import os
from dataclasses import dataclass

from services import settings


@dataclass(frozen=True)
class HubConfig:
    """Everything the hub needs to start; see the README's configuration table."""

    rpc_endpoint: str = settings.DEFAULT_HUB_RPC
    events_endpoint: str = settings.DEFAULT_EVENTS_OUT
    client_events_endpoint: str = settings.DEFAULT_CLIENT_EVENTS
    queue_size: int = 100
    stale_seconds: float = 300.0
    poll_max_wait: float = 25.0
    poll_batch: int = 1000
    max_clients: int = 10000


def load_config(environ=os.environ):
    """Build a ``HubConfig`` from the environment; raises ``ConfigError`` naming a bad key."""
    return HubConfig(
        rpc_endpoint=settings.env_str(environ, "BRIDGE_HUB_RPC", settings.DEFAULT_HUB_RPC),
        events_endpoint=settings.env_str(environ, "BRIDGE_EVENTS_OUT", settings.DEFAULT_EVENTS_OUT),
        client_events_endpoint=settings.env_str(environ, "BRIDGE_CLIENT_EVENTS", settings.DEFAULT_CLIENT_EVENTS),
        queue_size=settings.env_int(environ, "BRIDGE_QUEUE_SIZE", 100, minimum=1, maximum=1_000_000),
        stale_seconds=settings.env_float(environ, "BRIDGE_STALE_SECONDS", 300.0, minimum=0.1),
        poll_max_wait=settings.env_float(environ, "BRIDGE_POLL_MAX_WAIT", 25.0, minimum=0, maximum=300),
        poll_batch=settings.env_int(environ, "BRIDGE_POLL_BATCH", 1000, minimum=1, maximum=100_000),
        max_clients=settings.env_int(environ, "BRIDGE_MAX_CLIENTS", 10000, minimum=1),
    )
