"""Typed reading of ``BRIDGE_*`` environment variables, shared by every service's config."""

import dataclasses
from dataclasses import dataclass


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message names the key (``key`` holds it when known)."""

    def __init__(self, message, key=None):
        super().__init__(message)
        self.key = key


def env_str(environ, key, default):
    """The string value of ``key``, or ``default`` when unset or empty."""
    value = environ.get(key, "")
    return value if value != "" else default


def env_int(environ, key, default, minimum=None, maximum=None):
    """An integer setting, checked against optional bounds."""
    raw = environ.get(key, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key}={raw!r}: must be {_allowed('a whole number', minimum, maximum)}", key) from None
    return _bounded(key, value, minimum, maximum, "a whole number")


def env_float(environ, key, default, minimum=None, maximum=None):
    """A number setting, checked against optional bounds."""
    raw = environ.get(key, "")
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{key}={raw!r}: must be {_allowed('a number', minimum, maximum)}", key) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ConfigError(f"{key}={raw!r}: must be {_allowed('a finite number', minimum, maximum)}", key)
    return _bounded(key, value, minimum, maximum, "a number")


def env_bool(environ, key, default):
    """A yes/no setting: 1/true/yes/on or 0/false/no/off."""
    raw = environ.get(key, "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key}={raw!r}: must be true or false (1/0, yes/no, on/off)", key)


def env_list(environ, key, default):
    """A comma-separated list setting, blanks dropped."""
    raw = environ.get(key, "")
    if raw.strip() == "":
        return tuple(default)
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def env_choice(environ, key, default, choices):
    """One of ``choices`` (compared in lower case)."""
    value = env_str(environ, key, default).strip().lower()
    if value not in choices:
        raise ConfigError(f"{key}={value!r}: must be one of {', '.join(choices)}", key)
    return value


ENDPOINT_FORMS = "tcp://HOST:PORT (e.g. tcp://127.0.0.1:5101), ipc://PATH or inproc://NAME"


def env_endpoint(environ, key, default):
    """A ZeroMQ endpoint: ``tcp://HOST:PORT``, ``ipc://PATH`` or ``inproc://NAME``, checked for its scheme."""
    value = env_str(environ, key, default).strip()
    scheme, sep, rest = value.partition("://")
    if not sep:
        raise ConfigError(f"{key}={value!r}: no scheme: a ZeroMQ endpoint is {ENDPOINT_FORMS}", key)
    if scheme not in ("tcp", "ipc", "inproc"):
        raise ConfigError(f"{key}={value!r}: unknown scheme {scheme!r}: use {ENDPOINT_FORMS}", key)
    if scheme == "tcp":
        host, colon, port = rest.split(";")[-1].rpartition(":")
        if not colon or not host or not (port == "*" or (port.isdigit() and int(port) <= 65535)):
            raise ConfigError(f"{key}={value!r}: a tcp endpoint is tcp://HOST:PORT with a port from 0 to 65535", key)
    elif not rest:
        raise ConfigError(f"{key}={value!r}: {scheme}:// needs a name after it", key)
    return value


def _num(value):
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _allowed(kind, minimum, maximum):
    if minimum is not None and maximum is not None:
        return f"{kind} from {_num(minimum)} to {_num(maximum)}"
    if minimum is not None:
        return f"{kind} of at least {_num(minimum)}"
    if maximum is not None:
        return f"{kind} of at most {_num(maximum)}"
    return kind


def _bounded(key, value, minimum, maximum, kind="a number"):
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ConfigError(f"{key}={_num(value)}: must be {_allowed(kind, minimum, maximum)}", key)
    return value


# Addresses every service agrees on (DESIGN.md's defaults table).
DEFAULT_HUB_RPC = "tcp://127.0.0.1:5101"
DEFAULT_EVENTS_IN = "tcp://127.0.0.1:5102"
DEFAULT_EVENTS_OUT = "tcp://127.0.0.1:5103"
DEFAULT_CLIENT_EVENTS = "tcp://127.0.0.1:5104"
DEFAULT_NOTIFIER_RPC = "tcp://127.0.0.1:5105"


# ------------------------------------------------------------------ rows
# Each service declares its settings once, one ``Setting`` row each (its config.py); the frozen
# dataclass, the reading at start (and so ``lrbridge checkconfig``) and the docs' tables come from
# those rows (tests/unit/test_settings_rows.py holds docs/OPERATOR.md and the README to them).
_READERS = {
    "str": lambda row, environ, default: env_str(environ, row.variable, default),
    "int": lambda row, environ, default: env_int(environ, row.variable, default, row.minimum, row.maximum),
    "float": lambda row, environ, default: env_float(environ, row.variable, default, row.minimum, row.maximum),
    "bool": lambda row, environ, default: env_bool(environ, row.variable, default),
    "list": lambda row, environ, default: env_list(environ, row.variable, default),
    "choice": lambda row, environ, default: env_choice(environ, row.variable, default, row.choices),
    "endpoint": lambda row, environ, default: env_endpoint(environ, row.variable, default),
}
_TYPES = {"str": str, "int": int, "float": float, "bool": bool, "list": tuple, "choice": str, "endpoint": str}


@dataclass(frozen=True)
class Setting:
    """One setting: its variable, the config field it fills, its kind, default, bounds and help.

    ``default`` is the dataclass's default and the value when the variable is
    unset, unless ``default_from`` (a function of the environment) works the
    unset value out at start; ``shown`` is the default as the docs show it
    when that is not the value itself. ``kind`` is one of ``_READERS``.
    """

    variable: str
    field: str
    kind: str
    default: object = None
    minimum: object = None
    maximum: object = None
    help: str = ""
    choices: tuple = None
    default_from: object = None
    shown: str = None

    def read(self, environ):
        """The setting's value in ``environ``; ``ConfigError`` naming the variable when it cannot be used."""
        default = self.default if self.default_from is None else self.default_from(environ)
        return _READERS[self.kind](self, environ, default)

    def documented(self):
        """The default as the docs' settings tables show it (``""``: none)."""
        if self.shown is not None:
            return self.shown
        value = self.default
        if value is None or value == "" or value == ():
            return ""
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)


def config_class(name, module, rows, doc, namespace=None):
    """The frozen dataclass of one service's settings: a field per row, with the row's default."""
    fields = [(row.field, _TYPES[row.kind], dataclasses.field(default=row.default)) for row in rows]
    cls = dataclasses.make_dataclass(name, fields, frozen=True, namespace=dict(namespace or {}, __doc__=doc))
    cls.__module__ = module
    return cls


def read_config(cls, rows, environ):
    """``cls`` filled from ``environ`` by ``rows``."""
    return cls(**{row.field: row.read(environ) for row in rows})
