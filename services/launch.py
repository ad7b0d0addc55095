"""How a ZeroMQ service starts: logging, config, its server, signals, run.

Exit codes: 0 after a clean stop, 2 for a bad setting (named in the log),
1 when the server cannot start (a bind failure names the address).
"""

import signal

from services import parentwatch
from services.logs import setup_logging
from services.settings import ConfigError


def serve(service, load_config, server_class):
    """Run ``server_class(load_config())`` as ``service`` until SIGTERM/SIGINT; returns the exit code.

    The server needs ``run()`` (its loop, closing everything when it ends) and ``stop()``.
    """
    log = setup_logging(service)
    try:
        config = load_config()
    except ConfigError as ex:
        log.error("bad configuration: %s", ex)
        return 2
    try:
        server = server_class(config)
    except Exception as ex:  # a bind failure is the usual case: say which address
        log.error("cannot start: %s", ex)
        return 1
    # SIGTERM and SIGINT ask the loop to finish its turn; run() then closes cleanly.
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    signal.signal(signal.SIGINT, lambda *_: server.stop())
    parentwatch.watch_from_env(on_orphan=server.stop, name=service)  # started by `lrbridge run`: stop when it is gone
    server.run()
    return 0
