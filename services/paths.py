"""Where the bridge keeps its files: one per-user data folder, each path settable on its own.

The folder is the system's place for an application's data (``platformdirs``):

    macOS    ~/Library/Application Support/lrbridge
    Windows  %LOCALAPPDATA%\\lrbridge
    Linux    $XDG_DATA_HOME/lrbridge, else ~/.local/share/lrbridge

``BRIDGE_DATA_DIR`` moves the whole folder. Inside it, ``state/hub.sqlite3``
is the hub's store (``BRIDGE_STORE``), ``logs/`` the log files
(``BRIDGE_LOG_DIR``) and ``keys/`` the CURVE keys ``python -m services.curve``
makes (used when ``BRIDGE_CURVE_DIR`` names them). Nothing depends on the
folder a command was started from.
"""

import os
from pathlib import Path

import platformdirs

from services import settings

APP_NAME = "lrbridge"


def data_dir(environ=os.environ):
    """The per-user data folder (``BRIDGE_DATA_DIR`` wins), as an absolute path."""
    chosen = settings.env_str(environ, "BRIDGE_DATA_DIR", "")
    return Path(chosen or platformdirs.user_data_dir(APP_NAME, appauthor=False)).expanduser().absolute()


def default_store(environ=os.environ):
    """The hub's store when ``BRIDGE_STORE`` is not set."""
    return str(data_dir(environ) / "state" / "hub.sqlite3")


def default_log_dir(environ=os.environ):
    """The log folder when ``BRIDGE_LOG_DIR`` is not set."""
    return str(data_dir(environ) / "logs")


def default_keys_dir(environ=os.environ):
    """Where ``python -m services.curve`` makes the CURVE keys when given no folder."""
    return str(data_dir(environ) / "keys")


def folders(environ=os.environ):
    """``{"data", "state", "logs", "keys"}``: the folders in use, after every ``BRIDGE_*`` override."""
    store = settings.env_str(environ, "BRIDGE_STORE", default_store(environ))
    logs = environ.get("BRIDGE_LOG_DIR")
    return {
        "data": str(data_dir(environ)),
        "state": "(memory: nothing kept)" if store == ":memory:" else str(Path(store).absolute().parent),
        "logs": "(stderr only)" if logs == "" else str(Path(logs or default_log_dir(environ)).absolute()),
        "keys": str(Path(settings.env_str(environ, "BRIDGE_CURVE_DIR", default_keys_dir(environ))).absolute()),
    }
