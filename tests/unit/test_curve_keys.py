"""Where a CURVE client's keys come from, one more authorized pair, and the notifier's bind rule."""

import shutil
import subprocess
import sys

import pytest
import zmq

from services import curve
from services.notifier.config import load_config
from services.settings import ConfigError


@pytest.fixture
def keys(tmp_path):
    return curve.generate(tmp_path / "keys")


def test_a_client_folder_needs_no_server_secret(keys, tmp_path):
    remote = tmp_path / "remote"
    remote.mkdir()
    shutil.copy(keys / "server.key", remote)
    shutil.copy(keys / "client.key_secret", remote)
    full = curve.load(keys)
    assert curve.load_client(remote) == curve.ClientKeys(full.server_public, full.client_public, full.client_secret)
    assert curve.client_keys(environ={"BRIDGE_CURVE_DIR": str(remote)}) == curve.load_client(remote)


def test_explicit_keys_win_over_the_folder(keys):
    public, secret = zmq.curve_keypair()
    server = curve.load(keys).server_public
    got = curve.client_keys(curve_dir=keys, server_key=server.decode(), client_key=(public, secret.decode()),
                            environ={"BRIDGE_CURVE_DIR": "/nowhere"})
    assert got == curve.ClientKeys(server, public, secret)
    assert curve.client_keys(server_key=keys / "server.key", client_key=str(keys / "client.key_secret"),
                             environ={}).client_public == curve.load(keys).client_public


def test_no_keys_anywhere_means_no_curve():
    assert curve.client_keys(environ={}) is None


@pytest.mark.parametrize("kwargs, names", [
    ({"server_key": "short"}, "client_key"),  # one without the other
    ({"server_key": "x" * 39 + "~", "client_key": ("a", "b")}, "server_key"),  # not z85
    ({"server_key": "/etc/bridge/server.key", "client_key": ("a", "b")}, "server_key"),  # a missing file
    ({"server_key": "SERVER", "client_key": "CLIENT_PUBLIC"}, "no secret key"),  # a public-only file
    ({"curve_dir": "/nowhere"}, "BRIDGE_CURVE_DIR"),
])
def test_bad_keys_raise_a_config_error_naming_them(keys, kwargs, names):
    fill = {"SERVER": str(keys / "server.key"), "CLIENT_PUBLIC": str(keys / "client.key")}
    kwargs = {k: fill.get(v, v) if isinstance(v, str) else v for k, v in kwargs.items()}
    with pytest.raises(ConfigError, match=names):
        curve.client_keys(environ={}, **kwargs)


def test_the_client_command_adds_an_authorized_pair(keys):
    out = subprocess.run([sys.executable, "-m", "services.curve", str(keys), "--client", "gpu-box"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    public, secret = zmq.auth.load_certificate(str(keys / "gpu-box.key_secret"))
    assert secret is not None and oct((keys / "gpu-box.key_secret").stat().st_mode & 0o777) == "0o600"
    assert public in zmq.auth.load_certificates(str(keys / "authorized"))
    bad = subprocess.run([sys.executable, "-m", "services.curve", str(keys), "--client", "../x"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "client name" in bad.stderr


def test_the_notifier_binds_off_loopback_only_with_keys():
    off = {"BRIDGE_EVENTS_IN": "tcp://0.0.0.0:5102", "BRIDGE_EVENTS_OUT": "tcp://192.168.1.2:5103"}
    with pytest.raises(ConfigError, match="BRIDGE_CURVE_DIR"):
        load_config(off)
    assert load_config(dict(off, BRIDGE_CURVE_DIR="/etc/bridge/curve")).curve_dir == "/etc/bridge/curve"
    assert load_config({}).curve_dir is None  # loopback without CURVE stays the default
