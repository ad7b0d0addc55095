"""One log format for every service: time, service, level, message.

Records go to stderr and to a rotating file ``logs/<service>.log`` (the
folder is BRIDGE_LOG_DIR, default ``logs``; empty disables files).
"""

import logging
import logging.handlers
import os
import sys

FORMAT = "%(asctime)s.%(msecs)03d %(service)s %(levelname)s %(name)s: %(message)s"
DATEFMT = "%Y-%m-%dT%H:%M:%S"


class _ServiceFilter(logging.Filter):
    def __init__(self, service):
        super().__init__()
        self.service = service

    def filter(self, record):
        record.service = self.service
        return True


def setup_logging(service, environ=os.environ):
    """Configure the root logger for ``service``; safe to call more than once."""
    level = environ.get("BRIDGE_LOG_LEVEL", "INFO").upper()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_bridge", False):
            root.removeHandler(handler)
    formatter = logging.Formatter(FORMAT, DATEFMT)
    handlers = [logging.StreamHandler(sys.stderr)]
    log_dir = environ.get("BRIDGE_LOG_DIR", "logs")
    if log_dir:
        try:
            os.makedirs(log_dir, exist_ok=True)
            handlers.append(
                logging.handlers.RotatingFileHandler(
                    os.path.join(log_dir, f"{service}.log"), maxBytes=5 * 1024 * 1024, backupCount=3
                )
            )
        except OSError as ex:
            print(f"{service}: cannot write logs to {log_dir}: {ex}", file=sys.stderr)
    for handler in handlers:
        handler._bridge = True
        handler.setFormatter(formatter)
        handler.addFilter(_ServiceFilter(service))
        root.addHandler(handler)
    root.setLevel(getattr(logging, level, logging.INFO))
    return logging.getLogger(service)
