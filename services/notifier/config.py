"""The notifier's settings, read from ``BRIDGE_*`` environment variables."""

import os
from dataclasses import dataclass

from services import security, settings


@dataclass(frozen=True)
class NotifierConfig:
    """Everything the notifier needs to start; docs/BACKENDS.md lists each setting."""

    events_in: str = settings.DEFAULT_EVENTS_IN  # backends PUSH here (we bind PULL)
    events_out: str = settings.DEFAULT_EVENTS_OUT  # hubs SUB here (we bind XPUB)
    ingest_hwm: int = 10000  # events queued on the ingest socket before backends are pushed back
    hold_size: int = 10000  # events held while no hub is subscribed
    hold_seconds: float = 60.0  # a held event older than this is dropped, not delivered late
    status_interval: float = 5.0  # seconds between system_status samples; 0 turns the sampler off
    status_source: str = ""  # "" samples the machine; a path reads the values from that JSON file
    disk_path: str = os.path.abspath(os.sep)
    warn_cpu: float = 90.0  # percent; 0 turns a warning off
    warn_memory: float = 90.0
    warn_disk: float = 95.0
    warn_gpu_temp: float = 85.0  # degrees Celsius
    warn_hysteresis: float = 5.0  # a warning re-arms once the value is this far below its threshold
    curve_dir: str = None  # CURVE keys (python -m services.curve DIR); required for a bind off loopback
    # docs/PROTOCOL.md rules 23-31: replay requests from hubs, acknowledged publishes from backends (we bind ROUTER)
    rpc_endpoint: str = settings.DEFAULT_NOTIFIER_RPC
    replay_size: int = 50000  # published events kept for hubs that missed some
    replay_bytes: int = 32 * 1024 * 1024  # and at most this many bytes of them
    replay_index: int = 100000  # runs of (seq range -> target) kept to count what can no longer be resent


def load_config(environ=os.environ):
    """Build a ``NotifierConfig`` from the environment; raises ``ConfigError`` naming a bad key."""
    config = NotifierConfig(
        events_in=settings.env_endpoint(environ, "BRIDGE_EVENTS_IN", settings.DEFAULT_EVENTS_IN),
        events_out=settings.env_endpoint(environ, "BRIDGE_EVENTS_OUT", settings.DEFAULT_EVENTS_OUT),
        ingest_hwm=settings.env_int(environ, "BRIDGE_INGEST_HWM", 10000, minimum=1, maximum=1_000_000),
        hold_size=settings.env_int(environ, "BRIDGE_EVENTS_HOLD", 10000, minimum=1, maximum=1_000_000),
        hold_seconds=settings.env_float(environ, "BRIDGE_EVENTS_HOLD_SECONDS", 60.0, minimum=0, maximum=86400),
        status_interval=settings.env_float(environ, "BRIDGE_STATUS_INTERVAL", 5.0, minimum=0, maximum=86400),
        status_source=settings.env_str(environ, "BRIDGE_STATUS_SOURCE", ""),
        disk_path=settings.env_str(environ, "BRIDGE_STATUS_DISK", os.path.abspath(os.sep)),
        warn_cpu=settings.env_float(environ, "BRIDGE_WARN_CPU", 90.0, minimum=0),
        warn_memory=settings.env_float(environ, "BRIDGE_WARN_MEMORY", 90.0, minimum=0),
        warn_disk=settings.env_float(environ, "BRIDGE_WARN_DISK", 95.0, minimum=0),
        warn_gpu_temp=settings.env_float(environ, "BRIDGE_WARN_GPU_TEMP", 85.0, minimum=0),
        warn_hysteresis=settings.env_float(environ, "BRIDGE_WARN_HYSTERESIS", 5.0, minimum=0),
        curve_dir=settings.env_str(environ, "BRIDGE_CURVE_DIR", None),
        rpc_endpoint=settings.env_endpoint(environ, "BRIDGE_NOTIFIER_RPC", settings.DEFAULT_NOTIFIER_RPC),
        replay_size=settings.env_int(environ, "BRIDGE_REPLAY_SIZE", 50000, minimum=1, maximum=10_000_000),
        replay_bytes=settings.env_int(environ, "BRIDGE_REPLAY_BYTES", 32 * 1024 * 1024, minimum=1),
        replay_index=settings.env_int(environ, "BRIDGE_REPLAY_INDEX", 100000, minimum=1, maximum=10_000_000),
    )
    # Anyone who can reach the ingest can publish to every client: off loopback only with CURVE.
    security.check_bind("BRIDGE_EVENTS_IN", config.events_in, config.curve_dir)
    security.check_bind("BRIDGE_EVENTS_OUT", config.events_out, config.curve_dir)
    security.check_bind("BRIDGE_NOTIFIER_RPC", config.rpc_endpoint, config.curve_dir)
    return config
