"""gunicorn settings for the gateway, derived from the same ``BRIDGE_*`` variables.

Timeout ladder (each strictly longer than the one before):
hub hold (BRIDGE_POLL_MAX_WAIT, 25 s) < gateway's wait for the hub (hold +
BRIDGE_HUB_TIMEOUT) < gunicorn's worker timeout (below) < the plugin's LrHttp
timeout (hold + 15 s).
"""

import sys

from services import parentwatch
from services.gateway.config import load_config
from services.settings import ConfigError

try:
    _config = load_config()
except ConfigError as _ex:
    print(f"gateway: bad configuration: {_ex}", file=sys.stderr)
    sys.exit(2)

_host = _config.http_host
bind = f"[{_host}]:{_config.http_port}" if ":" in _host else f"{_host}:{_config.http_port}"
workers = _config.workers
worker_class = "services.gateway.worker.GatewayWorker"
if _config.tls_cert:  # HTTPS for a remote machine (docs/SECURITY.md)
    certfile = _config.tls_cert
    keyfile = _config.tls_key
timeout = int(_config.poll_max_wait + _config.hub_timeout + 30)
graceful_timeout = 10
keepalive = 5
accesslog = None
proc_name = "bridge-gateway"
logger_class = "services.gateway.gunicorn_logging.GatewayLogger"  # the bridge's one log format


def when_ready(server):
    """Under ``lrbridge run``, the master stops (and its workers with it) once ``lrbridge run`` is gone."""
    parentwatch.watch_from_env(name="gateway")


def post_worker_init(worker):
    """WebSocket keepalive, frame limit and compression from BRIDGE_* (docs/TRANSPORTS.md); the header timeout."""
    from services.gateway.websocket import configure_worker
    from services.gateway.worker import set_header_timeout

    configure_worker(worker, _config)
    set_header_timeout(_config.header_timeout)
