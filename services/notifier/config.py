"""The notifier's settings, read from ``BRIDGE_*`` environment variables: one row each (variable, kind,
default, bounds, help); ``NotifierConfig`` and ``load_config`` come from the rows."""

import os

from services import security, settings
from services.settings import Setting

SETTINGS = (
    Setting("BRIDGE_EVENTS_IN", "events_in", "endpoint", settings.DEFAULT_EVENTS_IN,
            help="backend event ingest (notifier binds PULL, backends connect)"),
    Setting("BRIDGE_EVENTS_OUT", "events_out", "endpoint", settings.DEFAULT_EVENTS_OUT,
            help="notifier to hub (notifier binds XPUB, hubs subscribe)"),
    Setting("BRIDGE_INGEST_HWM", "ingest_hwm", "int", 10000, 1, 1_000_000,
            "events queued on the ingest socket before backends are pushed back"),
    Setting("BRIDGE_EVENTS_HOLD", "hold_size", "int", 10000, 1, 1_000_000, "events held while no hub is subscribed"),
    Setting("BRIDGE_EVENTS_HOLD_SECONDS", "hold_seconds", "float", 60.0, 0, 86400,
            "a held event older than this is dropped, not delivered late"),
    Setting("BRIDGE_STATUS_INTERVAL", "status_interval", "float", 5.0, 0, 86400,
            "seconds between system_status samples; 0 turns the sampler off"),
    Setting("BRIDGE_STATUS_SOURCE", "status_source", "str", "",
            help='"" samples the machine; a path reads the values from that JSON file'),
    Setting("BRIDGE_STATUS_DISK", "disk_path", "str", os.path.abspath(os.sep), help="the disk whose usage is sampled",
            shown="the root folder"),
    Setting("BRIDGE_WARN_CPU", "warn_cpu", "float", 90.0, 0, None, "percent; 0 turns the warning off"),
    Setting("BRIDGE_WARN_MEMORY", "warn_memory", "float", 90.0, 0, None, "percent; 0 turns the warning off"),
    Setting("BRIDGE_WARN_DISK", "warn_disk", "float", 95.0, 0, None, "percent; 0 turns the warning off"),
    Setting("BRIDGE_WARN_GPU_TEMP", "warn_gpu_temp", "float", 85.0, 0, None, "degrees Celsius"),
    Setting("BRIDGE_WARN_HYSTERESIS", "warn_hysteresis", "float", 5.0, 0, None,
            "a warning re-arms once the value is this far below its threshold"),
    Setting("BRIDGE_CURVE_DIR", "curve_dir", "str", None,
            help="CURVE keys (python -m services.curve DIR); required for a bind off loopback"),
    # docs/PROTOCOL.md rules 23-31: replay requests from hubs, acknowledged publishes from backends (we bind ROUTER)
    Setting("BRIDGE_NOTIFIER_RPC", "rpc_endpoint", "endpoint", settings.DEFAULT_NOTIFIER_RPC,
            help="notifier requests: replays for the hub, acknowledged publishes"),
    Setting("BRIDGE_REPLAY_SIZE", "replay_size", "int", 50000, 1, 10_000_000,
            "published events kept for hubs that missed some"),
    Setting("BRIDGE_REPLAY_BYTES", "replay_bytes", "int", 32 * 1024 * 1024, 1, None,
            "and at most this many bytes of them"),
    Setting("BRIDGE_REPLAY_INDEX", "replay_index", "int", 100000, 1, 10_000_000,
            "runs of (seq range -> target) kept to count what can no longer be resent"),
)

NotifierConfig = settings.config_class(
    "NotifierConfig", __name__, SETTINGS, "Everything the notifier needs to start; docs/OPERATOR.md lists each setting.")


def load_config(environ=os.environ):
    """Build a ``NotifierConfig`` from the environment; raises ``ConfigError`` naming a bad key."""
    config = settings.read_config(NotifierConfig, SETTINGS, environ)
    # Anyone who can reach the ingest can publish to every client: off loopback only with CURVE.
    security.check_bind("BRIDGE_EVENTS_IN", config.events_in, config.curve_dir)
    security.check_bind("BRIDGE_EVENTS_OUT", config.events_out, config.curve_dir)
    security.check_bind("BRIDGE_NOTIFIER_RPC", config.rpc_endpoint, config.curve_dir)
    return config
