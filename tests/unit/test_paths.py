"""State, logs and keys default to the per-user data folder; every path is still settable on its own."""

import os
import subprocess
import sys

from services import logs, paths
from services.hub.config import load_config as hub_config
from tests.stack import ROOT


def test_the_data_folder_holds_state_logs_and_keys(tmp_path):
    env = {"BRIDGE_DATA_DIR": str(tmp_path)}
    assert paths.data_dir(env) == tmp_path
    assert hub_config(env).store == str(tmp_path / "state" / "hub.sqlite3")
    assert logs.log_settings(env)[2] == str(tmp_path / "logs")
    assert paths.default_keys_dir(env) == str(tmp_path / "keys")
    assert paths.folders(env) == {"data": str(tmp_path), "state": str(tmp_path / "state"),
                                  "logs": str(tmp_path / "logs"), "keys": str(tmp_path / "keys")}


def test_each_variable_still_wins(tmp_path):
    env = {"BRIDGE_DATA_DIR": str(tmp_path / "data"), "BRIDGE_STORE": str(tmp_path / "db" / "hub.db"),
           "BRIDGE_LOG_DIR": str(tmp_path / "l"), "BRIDGE_CURVE_DIR": str(tmp_path / "k")}
    assert hub_config(env).store == env["BRIDGE_STORE"]
    assert logs.log_settings(env)[2] == env["BRIDGE_LOG_DIR"]
    assert paths.folders(env) == {"data": str(tmp_path / "data"), "state": str(tmp_path / "db"),
                                  "logs": str(tmp_path / "l"), "keys": str(tmp_path / "k")}
    assert logs.log_settings(dict(env, BRIDGE_LOG_DIR=""))[2] == ""  # empty: stderr only, as before
    assert paths.folders(dict(env, BRIDGE_LOG_DIR="", BRIDGE_STORE=":memory:"))["logs"] == "(stderr only)"


def test_the_default_is_the_system_place_for_user_data_not_the_working_folder(tmp_path):
    """Linux: $XDG_DATA_HOME/lrbridge, else ~/.local/share/lrbridge (platformdirs reads the process environment)."""
    code = "from services import paths; print(paths.data_dir({}))"
    base = {k: v for k, v in os.environ.items() if k not in ("BRIDGE_DATA_DIR", "XDG_DATA_HOME")}
    base.update(HOME=str(tmp_path / "home"), PYTHONPATH=str(ROOT))
    for extra, expected in (({}, tmp_path / "home" / ".local" / "share" / "lrbridge"),
                            ({"XDG_DATA_HOME": str(tmp_path / "xdg")}, tmp_path / "xdg" / "lrbridge")):
        r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=dict(base, **extra),
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and r.stdout.strip() == str(expected), r


def test_curve_keys_without_a_folder_go_to_the_data_folder(tmp_path):
    env = dict(os.environ, BRIDGE_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "services.curve"], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r
    keys = tmp_path / "data" / "keys"
    assert sorted(p.name for p in keys.iterdir()) == ["authorized", "client.key", "client.key_secret",
                                                       "server.key", "server.key_secret"]
    assert str(keys) in r.stdout
