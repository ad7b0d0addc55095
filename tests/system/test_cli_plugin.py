"""``lrbridge plugin [DEST]``: the plug-in's zip built by Python alone (services/plugin_package.py)."""

import argparse
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from services.cli import offline
from tests.stack import ROOT


def lrbridge_plugin(cwd, *args):
    return subprocess.run([sys.executable, "-m", "services.cli", "plugin", *args], cwd=cwd,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=60)


def test_plugin_builds_the_zip_into_the_folder_given(tmp_path):
    pytest.importorskip(offline.PLUGIN_BUILDER)
    r = lrbridge_plugin(tmp_path, str(tmp_path / "out"))
    assert r.returncode == 0, r
    path = Path(r.stdout.strip())
    assert path.parent.resolve() == (tmp_path / "out").resolve() and path.is_file()
    assert path.name.startswith("LightroomBridge-") and path.name.endswith(".lrplugin.zip")
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None and any(n.endswith("Info.lua") for n in zf.namelist())


def test_plugin_defaults_to_dist_in_the_working_folder(tmp_path):
    pytest.importorskip(offline.PLUGIN_BUILDER)
    r = lrbridge_plugin(tmp_path)
    assert r.returncode == 0, r
    assert Path(r.stdout.strip()).resolve().parent == (tmp_path / "dist").resolve()


def test_without_a_builder_it_says_so_with_exit_4(monkeypatch):
    monkeypatch.setattr(offline, "PLUGIN_BUILDER", "services.no_such_builder")
    out, err = io.StringIO(), io.StringIO()
    assert offline.plugin(argparse.Namespace(dest="dist"), out, {}, err) == 4
    assert out.getvalue() == "" and "no plug-in builder" in err.getvalue()
