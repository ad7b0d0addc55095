"""The hub's settings, read from ``BRIDGE_*`` environment variables: one row each (variable, kind,
default, bounds, help); ``HubConfig`` and ``load_config`` come from the rows."""

import os

from services import paths, security, settings
from services.settings import Setting

# The default store is state/hub.sqlite3 in the per-user data folder (services/paths.py) when read from
# the environment; ':memory:' (the dataclass's default) keeps nothing across restarts.
SETTINGS = (
    Setting("BRIDGE_HUB_RPC", "rpc_endpoint", "endpoint", settings.DEFAULT_HUB_RPC,
            help="hub request endpoint (hub binds, gateways connect)"),
    Setting("BRIDGE_EVENTS_OUT", "events_endpoint", "endpoint", settings.DEFAULT_EVENTS_OUT,
            help="notifier to hub (notifier binds, hub connects)"),
    Setting("BRIDGE_CLIENT_EVENTS", "client_events_endpoint", "endpoint", settings.DEFAULT_CLIENT_EVENTS,
            help="what clients send, for backends (hub binds)"),
    Setting("BRIDGE_NOTIFIER_RPC", "notifier_rpc_endpoint", "endpoint", settings.DEFAULT_NOTIFIER_RPC,
            help="replay requests to the notifier (the hub connects)"),
    Setting("BRIDGE_QUEUE_SIZE", "queue_size", "int", 100, 1, 1_000_000, "messages kept per client"),
    Setting("BRIDGE_STALE_SECONDS", "stale_seconds", "float", 300.0, 0.1, None,
            "idle time after which a client is removed"),
    Setting("BRIDGE_POLL_MAX_WAIT", "poll_max_wait", "float", 25.0, 0, 300, "longest hold of a long-poll, seconds"),
    Setting("BRIDGE_POLL_BATCH", "poll_batch", "int", 1000, 1, 100_000, "most messages in one poll answer"),
    Setting("BRIDGE_INGEST_SLICE", "ingest_slice", "int", 50, 1, 100_000,
            "events a hub turn reads before poll answers that wait go out"),
    Setting("BRIDGE_MAX_CLIENTS", "max_clients", "int", 10000, 1, None, "most clients at once"),
    # docs/SECURITY.md: rates (per second; 0 = unlimited) and channel limits; whether a client must give
    # its secret is the gateway's BRIDGE_REQUIRE_CLIENT_SECRET, decided where requests enter
    Setting("BRIDGE_HANDSHAKE_RATE", "handshake_rate", "float", 20.0, 0, None, "handshakes per second allowed"),
    Setting("BRIDGE_HANDSHAKE_BURST", "handshake_burst", "int", 200, 1, None, "handshakes in a burst"),
    Setting("BRIDGE_SEND_RATE", "send_rate", "float", 500.0, 0, None, "client messages per second allowed"),
    Setting("BRIDGE_SEND_BURST", "send_burst", "int", 1000, 1, None, "client messages in a burst"),
    Setting("BRIDGE_MAX_CHANNELS_PER_CLIENT", "max_channels_per_client", "int", 64, 1, None,
            "subscriptions per client"),
    Setting("BRIDGE_MAX_CHANNELS_PER_SUBSCRIBE", "max_channels_per_subscribe", "int", 32, 1, None,
            "channels in one subscribe message"),
    Setting("BRIDGE_CURVE_DIR", "curve_dir", "str", None, help="CURVE keys for ZeroMQ endpoints off loopback"),
    # docs/DURABILITY.md: the store, channel history, job states
    Setting("BRIDGE_STORE", "store", "str", ":memory:", help="the hub's state file",
            default_from=paths.default_store, shown="state/hub.sqlite3 in the data folder"),
    Setting("BRIDGE_STORE_SYNC", "store_sync", "choice", "normal", choices=("normal", "full"),
            help="normal or full (safer against power loss, slower)"),
    Setting("BRIDGE_HISTORY_SIZE", "history_size", "int", 1000, 0, 1_000_000, "messages kept per channel"),
    Setting("BRIDGE_HISTORY_SECONDS", "history_seconds", "float", 86400.0, 0, None, "how long history is kept"),
    Setting("BRIDGE_HISTORY_CHANNELS", "history_channels", "int", 1000, 1, None, "channels with history"),
    Setting("BRIDGE_HISTORY_MAX_BYTES", "history_max_bytes", "int", 256 * 2**20, 0, None,
            "history of all channels together"),
    Setting("BRIDGE_JOBS_MAX", "jobs_max", "int", 1000, 1, None, "jobs remembered"),
    Setting("BRIDGE_JOBS_KEEP_SECONDS", "jobs_keep_seconds", "float", 86400.0, 0, None,
            "how long a finished job is remembered"),
    Setting("BRIDGE_JOB_STALE_SECONDS", "job_stale_seconds", "float", 120.0, 0.1, None,
            "a running job with no event for this long is shown as stalled"),
    # docs/BACKENDS.md: commands (calls into a client)
    Setting("BRIDGE_COMMANDS_PER_CLIENT", "commands_per_client", "int", 100, 1, 100_000,
            "commands pending at once for one client"),
    Setting("BRIDGE_COMMANDS_PER_CALLER", "commands_per_caller", "int", 1000, 1, 1_000_000,
            "commands pending at once from one caller"),
    Setting("BRIDGE_COMMAND_MAX_TIMEOUT", "command_max_timeout", "float", 3600.0, 0.1, 7 * 86400,
            "the longest deadline a call may ask for, seconds"),
    Setting("BRIDGE_COMMANDS_KEEP", "commands_keep", "int", 1000, 0, 1_000_000, "ended commands kept"),
    Setting("BRIDGE_COMMANDS_KEEP_BYTES", "commands_keep_bytes", "int", 64 * 1024 * 1024, 0, None,
            "ended commands kept, in encoded bytes"),
    Setting("BRIDGE_COMMANDS_KEEP_SECONDS", "commands_keep_seconds", "float", 86400.0, 0, None,
            "how long an ended command is kept"),
)

HubConfig = settings.config_class(
    "HubConfig", __name__, SETTINGS, "Everything the hub needs to start; see docs/OPERATOR.md's configuration table.")


def load_config(environ=os.environ):
    """Build a ``HubConfig`` from the environment; raises ``ConfigError`` naming a bad key."""
    config = settings.read_config(HubConfig, SETTINGS, environ)
    security.check_bind("BRIDGE_HUB_RPC", config.rpc_endpoint, config.curve_dir)
    security.check_bind("BRIDGE_CLIENT_EVENTS", config.client_events_endpoint, config.curve_dir)
    return config
