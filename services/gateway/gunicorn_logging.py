"""gunicorn's own log lines (and uvicorn's, which its worker routes through them) in the bridge's format.

Named in gunicorn_conf.py as ``logger_class``; POSIX only, like gunicorn.
"""

import logging

from gunicorn.glogging import Logger

from services.logs import ServiceFilter, log_settings, make_formatter


class GatewayLogger(Logger):
    """gunicorn's logger with the bridge's formatter, service name and BRIDGE_LOG_LEVEL."""

    def setup(self, cfg):
        super().setup(cfg)
        level, fmt, *_ = log_settings()
        formatter = make_formatter(fmt)
        self.error_log.setLevel(getattr(logging, level))
        for handler in self.error_log.handlers:
            handler.setFormatter(formatter)
            if not any(isinstance(f, ServiceFilter) for f in handler.filters):
                handler.addFilter(ServiceFilter("gateway"))
