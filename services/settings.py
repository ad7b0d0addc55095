"""Typed reading of ``BRIDGE_*`` environment variables, shared by every service's config."""


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
