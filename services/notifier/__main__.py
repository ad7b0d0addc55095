"""Run the notifier: ``python -m services.notifier``."""

import sys

from services.logs import setup_logging
from services.settings import ConfigError
from services.notifier.config import load_config
from services.notifier.server import NotifierServer


def main():
    log = setup_logging("notifier")
    try:
        config = load_config()
    except ConfigError as ex:
        log.error("bad configuration: %s", ex)
        return 2
    try:
        server = NotifierServer(config)
    except Exception as ex:  # a bind failure is the usual case: say which address
        log.error("cannot start: %s", ex)
        return 1
    server.install_signal_handlers()
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
