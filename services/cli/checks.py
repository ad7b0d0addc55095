"""Before anything starts: every setting of every service, and the ports they are about to listen on.

``settings_problems`` reads each service's configuration the way the service
itself will and returns one line per bad setting (the variable, its value and
what is allowed), not only the first: after a bad setting is reported it is
put back to its default and the configuration is read again. ``port_problem``
tells apart a port already served by a bridge, one taken by another program,
and an address that is not this machine's.
"""

import contextlib
import errno
import http.client
import io
import json
import os
import re
import socket
from pathlib import Path

from services import curve, logs, paths, settings
from services.gateway.config import load_config as gateway_config
from services.hub.config import load_config as hub_config
from services.notifier.config import load_config as notifier_config
from services.settings import ConfigError

# Procfile name -> how that process reads its settings (the same function it calls at start).
LOADERS = {"hub": hub_config, "notifier": notifier_config, "gateway": gateway_config}
# Procfile name -> the settings of the addresses it listens on.
BINDS = {
    "hub": ("BRIDGE_HUB_RPC", "BRIDGE_CLIENT_EVENTS"),
    "notifier": ("BRIDGE_EVENTS_IN", "BRIDGE_EVENTS_OUT", "BRIDGE_NOTIFIER_RPC"),
    "gateway": ("BRIDGE_HTTP_PORT",),
}
_LEADING_KEY = re.compile(r"^(BRIDGE_[A-Z0-9_]+)")
_MAX_ROUNDS = 100  # more bad settings than there are settings cannot happen


def _key_of(ex):
    if ex.key:
        return ex.key
    match = _LEADING_KEY.match(str(ex))
    return match.group(1) if match else None


def _problems_of(load, environ):
    """Every ``ConfigError`` ``load`` raises, each bad variable dropped in turn to find the next."""
    env = dict(environ)
    found = []
    for _ in range(_MAX_ROUNDS):
        try:
            load(env)
            return found
        except ConfigError as ex:
            key = _key_of(ex)
            found.append((key, str(ex)))
            if key is None or key not in env:
                return found
            del env[key]
    return found


def _log_settings(environ):
    """The BRIDGE_LOG_* settings, strictly (the services fall back to a default with a warning instead)."""
    level = settings.env_str(environ, "BRIDGE_LOG_LEVEL", "INFO")
    if level.strip().upper() not in logs.LEVELS:
        raise ConfigError(f"BRIDGE_LOG_LEVEL={level!r}: must be one of {', '.join(logs.LEVELS)}", "BRIDGE_LOG_LEVEL")
    settings.env_choice(environ, "BRIDGE_LOG_FORMAT", "text", logs.FORMATS)
    settings.env_int(environ, "BRIDGE_LOG_MAX_BYTES", logs.DEFAULT_MAX_BYTES, minimum=0)
    settings.env_int(environ, "BRIDGE_LOG_BACKUPS", logs.DEFAULT_BACKUPS, minimum=0)


def _folders(environ):
    """The store's folder and the log folder must be folders this user can create and write."""
    store = settings.env_str(environ, "BRIDGE_STORE", None)
    if store != ":memory:":
        key = "BRIDGE_STORE" if store else "BRIDGE_DATA_DIR"
        _writable_folder(key, environ.get(key, ""), Path(store or paths.default_store(environ)).absolute().parent)
    logs_dir = environ.get("BRIDGE_LOG_DIR")
    if logs_dir != "":
        key = "BRIDGE_LOG_DIR" if logs_dir else "BRIDGE_DATA_DIR"
        _writable_folder(key, environ.get(key, ""), Path(logs_dir or paths.default_log_dir(environ)).absolute())


def _writable_folder(key, value, folder):
    shown = f"{key}={value!r}" if value else f"{key} (unset, so {folder})"
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{shown}: {probe} is a file, not a folder: must be a folder this user can write", key)
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{shown}: {probe} is not writable by this user: must be a folder this user can write", key)


def _curve_keys(environ):
    directory = settings.env_str(environ, "BRIDGE_CURVE_DIR", None)
    if directory:
        curve.load(directory)


def settings_problems(environ=os.environ, names=None):
    """One line per bad setting of the named processes (all when ``None``), logs and keys included."""
    loaders = [loader for name, loader in LOADERS.items() if names is None or name in names]
    lines, seen = [], set()
    for load in loaders + [_log_settings, _folders, _curve_keys]:
        for key, line in _problems_of(load, environ):
            if (key or line) not in seen:
                seen.add(key or line)
                lines.append(line)
    return lines


def effective(environ=os.environ):
    """``{service: {field: value}}`` of every service that reads its settings without error."""
    result = {}
    for name, load in LOADERS.items():
        try:
            config = load(environ)
        except ConfigError:
            continue
        result[name] = {field: _shown(field, value) for field, value in vars(config).items()}
    with contextlib.redirect_stderr(io.StringIO()):  # its fallback warnings: settings_problems names them once
        level, fmt, folder, max_bytes, backups = logs.log_settings(environ)
    result["logs"] = {"level": level, "format": fmt, "folder": folder, "max_bytes": max_bytes, "backups": backups}
    return result


def _shown(field, value):
    """Secrets are shown as set or not, never printed."""
    if ("token" in field or "secret" in field) and isinstance(value, str):
        return "(set)" if value else value
    return list(value) if isinstance(value, tuple) else value


# ------------------------------------------------------------------ ports
class PortProblem(Exception):
    """A listen address that cannot be used: ``running`` when a bridge already answers there."""

    def __init__(self, message, running=False):
        super().__init__(message)
        self.running = running


def listen_addresses(names, environ=os.environ):
    """``[(setting, value, host, port, kind)]`` the named processes will listen on (tcp only; settings checked)."""
    found = []
    for name in names:
        for key in BINDS.get(name, ()):
            if key == "BRIDGE_HTTP_PORT":
                config = gateway_config(environ)
                found.append((key, str(config.http_port), config.http_host, config.http_port, "http"))
                continue
            endpoint = settings.env_endpoint(environ, key, _default_endpoint(key))
            scheme, _, rest = endpoint.partition("://")
            host, _, port = rest.split(";")[-1].rpartition(":")
            if scheme == "tcp" and port != "*":
                found.append((key, endpoint, "" if host == "*" else host.strip("[]"), int(port), "zmq"))
    return found


def _default_endpoint(key):
    return {
        "BRIDGE_HUB_RPC": settings.DEFAULT_HUB_RPC, "BRIDGE_CLIENT_EVENTS": settings.DEFAULT_CLIENT_EVENTS,
        "BRIDGE_EVENTS_IN": settings.DEFAULT_EVENTS_IN, "BRIDGE_EVENTS_OUT": settings.DEFAULT_EVENTS_OUT,
        "BRIDGE_NOTIFIER_RPC": settings.DEFAULT_NOTIFIER_RPC,
    }[key]


def check_ports(names, environ=os.environ, timeout=2.0):
    """Raise ``PortProblem`` for the first address the named processes cannot listen on."""
    addresses = sorted(listen_addresses(names, environ), key=lambda a: a[4] != "http")  # a bridge's gateway first
    for key, value, host, port, kind in addresses:
        if kind == "http":
            where = bridge_at(host, port, timeout)
            if where is not None:
                raise PortProblem(f"a bridge is already running at {where} (dashboard: {where}/ws/dashboard): "
                                  "use it, or stop it first; a second bridge needs another BRIDGE_HTTP_PORT "
                                  "and other BRIDGE_* endpoints", running=True)
        reason = _cannot_listen(host, port)
        if reason == "in use":
            owner = "another program" if kind == "http" else "another bridge, or another program"
            raise PortProblem(f"{key}={value}: port {port} on {host or 'every address'} is taken by {owner}: "
                              f"stop it, or set {key} to a free port")
        if reason:
            raise PortProblem(f"{key}={value}: cannot listen on {host or 'every address'} port {port}: {reason}")


def connect_host(host):
    return "127.0.0.1" if host in ("", "0.0.0.0", "*") else ("::1" if host == "::" else host)


def bridge_at(host, port, timeout=2.0):
    """``http://host:port`` when a bridge's gateway answers there, else ``None`` (nothing, or not a bridge)."""
    target = connect_host(host)
    conn = http.client.HTTPConnection(target, port, timeout=timeout)
    try:
        conn.request("GET", "/ws/health", headers={"Accept": "application/json", "User-Agent": "lrbridge-cli"})
        resp = conn.getresponse()
        body = json.loads(resp.read() or b"null")
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        conn.close()
    if isinstance(body, dict) and "success" in body:  # every answer of the gateway has it, even a 401
        return f"http://[{target}]:{port}" if ":" in target else f"http://{target}:{port}"
    return None


def _cannot_listen(host, port):
    """``None`` when ``host:port`` can be listened on now, ``"in use"``, or why not."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as ex:
        return f"unknown host ({ex.strerror})"
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        if os.name != "nt":  # as the services do: a port in TIME_WAIT is free; on Windows this would steal it
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1)
    except OSError as ex:
        if ex.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1)):
            return "in use"
        if ex.errno in (errno.EADDRNOTAVAIL, getattr(errno, "WSAEADDRNOTAVAIL", -1)):
            return "not an address of this machine"
        return ex.strerror or str(ex)
    finally:
        sock.close()
    return None
