"""ZeroMQ CURVE for the bridge's sockets when they leave loopback.

One folder (BRIDGE_CURVE_DIR) holds every key, made once with::

    python -m services.curve /etc/bridge/curve

    server.key, server.key_secret   the hub's certificate (its public half is given to clients)
    client.key, client.key_secret   the certificate the gateway (and backends) present
    authorized/                     public certificates of every client the hub accepts

The hub's bound sockets become CURVE servers and a ZAP handler
(``zmq.auth``) accepts only the clients whose public keys are in
``authorized/``; a client without the keys, or with keys not listed, gets
no connection (it times out as if the hub were down). Copy the folder to
the other machine, or give it ``server.key`` and a client pair of its own
(add that client's ``.key`` to ``authorized/``).
"""

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

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


def serve(sock, keys):
    """Make ``sock`` (before bind) a CURVE server with the hub's keys."""
    sock.curve_secretkey = keys.server_secret
    sock.curve_publickey = keys.server_public
    sock.curve_server = True


def connect_as_client(sock, keys):
    """Make ``sock`` (before connect) a CURVE client of the hub."""
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


def main(argv=sys.argv[1:]):
    """``python -m services.curve DIR``: make the keys."""
    if len(argv) != 1:
        print("usage: python -m services.curve DIR", file=sys.stderr)
        return 2
    root = generate(argv[0])
    print(f"CURVE keys written to {root}; set BRIDGE_CURVE_DIR={root} for the hub and the gateway")
    return 0


if __name__ == "__main__":
    sys.exit(main())
