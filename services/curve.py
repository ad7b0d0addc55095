"""ZeroMQ CURVE for the bridge's sockets when they leave loopback.

One folder (BRIDGE_CURVE_DIR) holds every key, made once with::

    python -m services.curve [DIR]      (default: keys/ in the per-user data folder)

    server.key, server.key_secret   the hub's certificate (its public half is given to clients)
    client.key, client.key_secret   the certificate the gateway (and backends) present
    authorized/                     public certificates of every client the hub accepts

The bound sockets of the hub (BRIDGE_HUB_RPC, BRIDGE_CLIENT_EVENTS) and of
the notifier (BRIDGE_EVENTS_IN, BRIDGE_EVENTS_OUT, BRIDGE_NOTIFIER_RPC) become CURVE servers with
the one server certificate, and a ZAP handler (``zmq.auth``) in each process
accepts only the clients whose public keys are in ``authorized/``; a client
without the keys, or with keys not listed, gets no connection (it times out
as if the service were down). The gateway, the hub's SUB to the notifier and
the backend library connect as CURVE clients.

A client needs only ``server.key`` (public) and a ``.key_secret`` of its own:
copy those to the other machine, or make it a pair of its own with
``python -m services.curve DIR --client NAME`` (which also authorizes it).
"""

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from services import paths
from services.settings import ConfigError


@dataclass(frozen=True)
class CurveKeys:
    """The keys of one BRIDGE_CURVE_DIR (public/secret pairs as z85 bytes)."""

    server_public: bytes
    server_secret: bytes
    client_public: bytes
    client_secret: bytes
    authorized: str


def _pair(path):
    public, secret = zmq.auth.load_certificate(str(path))
    return public, secret


@dataclass(frozen=True)
class ClientKeys:
    """What a CURVE client needs: the server's public key and its own pair (z85 bytes)."""

    server_public: bytes
    client_public: bytes
    client_secret: bytes


def load(directory):
    """Read the keys in ``directory``; raises ``ConfigError`` naming what is missing."""
    root = Path(directory)
    try:
        server_public, server_secret = _pair(root / "server.key_secret")
        client_public, client_secret = _pair(root / "client.key_secret")
    except (OSError, ValueError) as ex:
        raise ConfigError(f"BRIDGE_CURVE_DIR={directory}: cannot read the keys ({ex}); "
                          "make them with python -m services.curve DIR") from None
    if server_secret is None or client_secret is None:
        raise ConfigError(f"BRIDGE_CURVE_DIR={directory}: a .key_secret file has no secret key")
    authorized = root / "authorized"
    if not authorized.is_dir():
        raise ConfigError(f"BRIDGE_CURVE_DIR={directory}: no authorized/ folder of client public keys")
    return CurveKeys(server_public, server_secret, client_public, client_secret, str(authorized))


def _z85_key(value, what):
    key = value.encode() if isinstance(value, str) else bytes(value)
    try:
        if len(key) != 40 or len(z85.decode(key)) != 32:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"{what} is not a 40-character z85 CURVE key") from None
    return key


def _public_key(value, what):
    """A public key given as a certificate file (``.key`` or ``.key_secret``) or as its z85 text."""
    if isinstance(value, (str, os.PathLike)) and Path(value).is_file():
        try:
            return _z85_key(zmq.auth.load_certificate(str(value))[0], f"{what} ({value})")
        except (OSError, ValueError) as ex:
            raise ConfigError(f"{what}: cannot read {value} ({ex})") from None
    if isinstance(value, os.PathLike) or (isinstance(value, str) and len(value) != 40 and os.sep in value):
        raise ConfigError(f"{what}: no such file {value}")
    return _z85_key(value, what)


def _key_pair(value, what):
    """A client pair given as a ``.key_secret`` file or as a ``(public, secret)`` pair of z85 keys."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return _z85_key(value[0], f"{what} (public)"), _z85_key(value[1], f"{what} (secret)")
    try:
        public, secret = zmq.auth.load_certificate(str(value))
    except (OSError, ValueError) as ex:
        raise ConfigError(f"{what}: cannot read {value} ({ex})") from None
    if secret is None:
        raise ConfigError(f"{what}: {value} has no secret key (give the .key_secret file)")
    return _z85_key(public, f"{what} ({value})"), _z85_key(secret, f"{what} ({value})")


def load_client(directory):
    """The client half of a key folder: ``server.key`` and ``client.key_secret`` (no server secret needed)."""
    root = Path(directory)
    server_public = _public_key(root / "server.key", f"BRIDGE_CURVE_DIR={directory}")
    client_public, client_secret = _key_pair(root / "client.key_secret", f"BRIDGE_CURVE_DIR={directory}")
    return ClientKeys(server_public, client_public, client_secret)


def client_keys(curve_dir=None, server_key=None, client_key=None, environ=os.environ):
    """The keys a backend connects with, or ``None`` for no CURVE (loopback).

    ``server_key`` (the server's public key: a ``server.key`` file or its z85
    text) and ``client_key`` (a ``.key_secret`` file or a ``(public, secret)``
    pair) win when given, both together; else the folder ``curve_dir``, else
    BRIDGE_CURVE_DIR. Raises ``ConfigError`` naming what is missing or unreadable.
    """
    if server_key is not None or client_key is not None:
        if server_key is None or client_key is None:
            raise ConfigError("CURVE needs both server_key and client_key")
        server_public = _public_key(server_key, "server_key")
        return ClientKeys(server_public, *_key_pair(client_key, "client_key"))
    directory = curve_dir or environ.get("BRIDGE_CURVE_DIR")
    return load_client(directory) if directory else None


def serve(sock, keys):
    """Make ``sock`` (before bind) a CURVE server with the hub's keys."""
    sock.curve_secretkey = keys.server_secret
    sock.curve_publickey = keys.server_public
    sock.curve_server = True


def connect_as_client(sock, keys):
    """Make ``sock`` (before connect) a CURVE client; ``keys`` is a ``CurveKeys`` or a ``ClientKeys``."""
    sock.curve_serverkey = keys.server_public
    sock.curve_publickey = keys.client_public
    sock.curve_secretkey = keys.client_secret


def start_authenticator(context, keys):
    """A ZAP handler on ``context`` that accepts only the public keys in ``authorized/``; returns it (``stop()``)."""
    auth = ThreadAuthenticator(context)
    auth.start()
    auth.configure_curve(domain="*", location=keys.authorized)
    return auth


def generate(directory):
    """Make a server and a client certificate in ``directory`` and authorize the client."""
    root = Path(directory)
    (root / "authorized").mkdir(parents=True, exist_ok=True)
    zmq.auth.create_certificates(str(root), "server")
    zmq.auth.create_certificates(str(root), "client")
    shutil.copy(root / "client.key", root / "authorized" / "client.key")
    for path in root.glob("*.key_secret"):
        path.chmod(0o600)
    return root


def generate_client(directory, name):
    """Make one more client pair ``NAME.key``/``NAME.key_secret`` in ``directory`` and authorize it."""
    root = Path(directory)
    if not name.replace("-", "").replace("_", "").isalnum() or name in ("server", "client"):
        raise ConfigError(f"client name {name!r}: use letters, digits, - and _, not server or client")
    if not (root / "authorized").is_dir():
        raise ConfigError(f"{directory}: no authorized/ folder; make the keys first (python -m services.curve DIR)")
    public_file, secret_file = zmq.auth.create_certificates(str(root), name)
    Path(secret_file).chmod(0o600)
    shutil.copy(public_file, root / "authorized" / f"{name}.key")
    return Path(secret_file)


def main(argv=sys.argv[1:]):
    """``python -m services.curve [DIR] [--client NAME]``: make the keys, or one more authorized client pair.

    Without DIR: ``keys/`` in the per-user data folder (services/paths.py).
    """
    if not argv or argv[0].startswith("--"):
        argv = [paths.default_keys_dir()] + list(argv)
    if len(argv) == 1:
        root = generate(argv[0])
        print(f"CURVE keys written to {root}; set BRIDGE_CURVE_DIR={root} for the hub, notifier, gateway and backends")
        return 0
    if len(argv) == 3 and argv[1] == "--client":
        try:
            secret = generate_client(argv[0], argv[2])
        except ConfigError as ex:
            print(ex, file=sys.stderr)
            return 2
        print(f"client pair written to {secret} (and its public .key authorized); give a backend "
              f"{Path(argv[0]) / 'server.key'} and {secret}; restart the hub and the notifier to admit it")
        return 0
    print("usage: python -m services.curve [DIR] [--client NAME]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
