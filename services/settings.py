"""Typed reading of ``BRIDGE_*`` environment variables, shared by every service's config."""


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message names the key."""


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
        raise ConfigError(f"{key} must be an integer, got {raw!r}") from None
    return _bounded(key, value, minimum, maximum)


def env_float(environ, key, default, minimum=None, maximum=None):
    """A number setting, checked against optional bounds."""
    raw = environ.get(key, "")
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a number, got {raw!r}") from None
    return _bounded(key, value, minimum, maximum)


def env_bool(environ, key, default):
    """A yes/no setting: 1/true/yes/on or 0/false/no/off."""
    raw = environ.get(key, "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key} must be true or false, got {raw!r}")


def env_list(environ, key, default):
    """A comma-separated list setting, blanks dropped."""
    raw = environ.get(key, "")
    if raw.strip() == "":
        return tuple(default)
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _bounded(key, value, minimum, maximum):
    if minimum is not None and value < minimum:
        raise ConfigError(f"{key} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{key} must be at most {maximum}, got {value}")
    return value


# Addresses every service agrees on (DESIGN.md's defaults table).
DEFAULT_HUB_RPC = "tcp://127.0.0.1:5101"
DEFAULT_EVENTS_IN = "tcp://127.0.0.1:5102"
DEFAULT_EVENTS_OUT = "tcp://127.0.0.1:5103"
DEFAULT_CLIENT_EVENTS = "tcp://127.0.0.1:5104"
DEFAULT_NOTIFIER_RPC = "tcp://127.0.0.1:5105"
