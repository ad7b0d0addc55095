"""One log format for every service: time, service, level, logger, message, key=value context.

Text (default)::

    2025-11-09T14:03:07.123Z hub INFO services.hub.hub: client connected client_id=3f… client_type=lightroom

JSON lines with ``BRIDGE_LOG_FORMAT=json``::

    {"time": "2025-11-09T14:03:07.123Z", "service": "hub", "level": "INFO",
     "logger": "services.hub.hub", "message": "client connected", "client_id": "3f…"}

Context comes from ``extra={...}`` on a logging call. Records go to stderr and
to a rotating file ``<BRIDGE_LOG_DIR>/<service>.log`` (default ``logs/`` in the
per-user data folder, services/paths.py; empty disables files). Several processes may share one file (gunicorn's workers all
write ``gateway.log``): ``SharedRotatingFileHandler`` rotates under a file
lock and reopens a file another process rotated, so none writes past the size
limit into a renamed file for long and no line is lost.

Log lines name clients (their ids are enough to read a client's messages
when secrets are off), so the files are private like the hub's store: each is
created (or reopened) with mode 0600, and a folder the bridge creates for them
with 0700.
"""

import json
import logging
import logging.handlers
import os
import sys
import time

from services.paths import default_log_dir

try:  # POSIX only; on Windows one process writes each file (uvicorn, no workers)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("text", "json")
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
DEFAULT_BACKUPS = 3
FILE_MODE = 0o600  # log files and their lock file: the owner alone reads them
FOLDER_MODE = 0o700  # a log folder the bridge creates

# Attributes every LogRecord has; anything else on a record is caller context.
# (uvicorn adds color_message: the same text with terminal colours.)
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "service", "taskName", "color_message",
}


def _utc(record):
    t = time.gmtime(record.created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}Z"


def context_of(record):
    """The caller's ``extra={...}`` fields of a record, in the order given."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


def _text_value(value):
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if text == "" or any(c in text for c in ' "=\n'):
        return json.dumps(text)
    return text


class TextFormatter(logging.Formatter):
    """``time service LEVEL logger: message key=value …`` (plus the traceback, if any)."""

    def format(self, record):
        line = f"{_utc(record)} {getattr(record, 'service', '-')} {record.levelname} {record.name}: {record.getMessage()}"
        context = context_of(record)
        if context:
            line += " " + " ".join(f"{k}={_text_value(v)}" for k, v in context.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line with the same fields as the text format."""

    def format(self, record):
        entry = {
            "time": _utc(record),
            "service": getattr(record, "service", "-"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in context_of(record).items():
            entry.setdefault(key, value)
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class ServiceFilter(logging.Filter):
    """Stamps every record with the service name the formats show."""

    def __init__(self, service):
        super().__init__()
        self.service = service

    def filter(self, record):
        record.service = self.service
        return True


def _private(path, flags):
    """``open``'s opener for log files: created 0600, and an older file made 0600 too."""
    fd = os.open(path, flags, FILE_MODE)
    if hasattr(os, "fchmod"):  # POSIX; on Windows the per-user folder's ACL is what protects it
        try:
            if os.fstat(fd).st_mode & 0o777 != FILE_MODE:
                os.fchmod(fd, FILE_MODE)
        except OSError:  # another user's file: keep writing, its owner decides
            pass
    return fd


class SharedRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A size-rotated log file that several processes may append to.

    The size is read from the file itself (not this process's stream), the
    rollover happens under an exclusive lock on ``<file>.lock`` and re-checks
    the size once locked, and a process whose open file was renamed by another
    reopens the path before writing.
    """

    def __init__(self, filename, maxBytes, backupCount):
        super().__init__(filename, maxBytes=maxBytes, backupCount=backupCount, delay=False)
        self.lock_path = self.baseFilename + ".lock"

    def _open(self):
        return open(self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors, opener=_private)

    def _renamed(self):
        if self.stream is None:
            return True
        try:
            return os.stat(self.baseFilename).st_ino != os.fstat(self.stream.fileno()).st_ino
        except OSError:
            return True

    def shouldRollover(self, record):
        if self.maxBytes <= 0:
            return False
        if self._renamed():
            if self.stream is not None:
                self.stream.close()
            self.stream = self._open()
        try:
            size = os.stat(self.baseFilename).st_size
        except OSError:
            return False
        return size + len(self.format(record)) + 1 >= self.maxBytes

    def doRollover(self):
        if fcntl is None:
            return super().doRollover()
        with open(self.lock_path, "a", opener=_private) as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if self._renamed():  # another process rotated it while we waited
                    if self.stream is not None:
                        self.stream.close()
                    self.stream = self._open()
                else:
                    super().doRollover()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def log_settings(environ=os.environ):
    """``(level, format, folder, max_bytes, backups)`` from the BRIDGE_LOG_* variables.

    Bad values fall back to the default with a warning on stderr: logging must
    come up so the bad setting of anything else can be reported.
    """
    level = environ.get("BRIDGE_LOG_LEVEL", "").strip().upper() or "INFO"
    if level not in LEVELS:
        print(f"BRIDGE_LOG_LEVEL must be one of {', '.join(LEVELS)}, got {level!r}; using INFO", file=sys.stderr)
        level = "INFO"
    fmt = environ.get("BRIDGE_LOG_FORMAT", "").strip().lower() or "text"
    if fmt not in FORMATS:
        print(f"BRIDGE_LOG_FORMAT must be text or json, got {fmt!r}; using text", file=sys.stderr)
        fmt = "text"
    folder = environ.get("BRIDGE_LOG_DIR")
    if folder is None:  # the per-user data folder's logs/, whatever folder the command was typed in
        folder = default_log_dir(environ)
    sizes = []
    for key, default in (("BRIDGE_LOG_MAX_BYTES", DEFAULT_MAX_BYTES), ("BRIDGE_LOG_BACKUPS", DEFAULT_BACKUPS)):
        raw = environ.get(key, "").strip()
        try:
            value = int(raw) if raw else default
            if value < 0:
                raise ValueError
        except ValueError:
            print(f"{key} must be a whole number of at least 0, got {raw!r}; using {default}", file=sys.stderr)
            value = default
        sizes.append(value)
    return level, fmt, folder, sizes[0], sizes[1]


def make_formatter(fmt):
    """The formatter for ``"text"`` or ``"json"``."""
    return JsonFormatter() if fmt == "json" else TextFormatter()


def file_handler(folder, name, max_bytes, backups):
    """A shared rotating handler for ``<folder>/<name>.log``, or ``None`` (reported) if it cannot be opened."""
    try:
        os.makedirs(folder, mode=FOLDER_MODE, exist_ok=True)  # the mode applies only if it is created now
        return SharedRotatingFileHandler(os.path.join(folder, f"{name}.log"), max_bytes, backups)
    except OSError as ex:
        print(f"{name}: cannot write logs to {folder}: {ex}", file=sys.stderr)
        return None


def setup_logging(service, environ=os.environ):
    """Configure the root logger for ``service``; safe to call more than once."""
    level, fmt, folder, max_bytes, backups = log_settings(environ)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_bridge", False):
            root.removeHandler(handler)
            handler.close()
    formatter = make_formatter(fmt)
    handlers = [logging.StreamHandler(sys.stderr)]
    if folder:
        handler = file_handler(folder, service, max_bytes, backups)
        if handler is not None:
            handlers.append(handler)
    for handler in handlers:
        handler._bridge = True
        handler.setFormatter(formatter)
        handler.addFilter(ServiceFilter(service))
        root.addHandler(handler)
    root.setLevel(getattr(logging, level))
    return logging.getLogger(service)
