"""Run the Lua specs (busted, under lua5.1): the shim's own and the plug-in's pure logic.

One pytest item per spec file. The shim's HTTP specs talk to
server/test_server.py, started once on a free loopback port; the plug-in
specs need no server (their HTTP is scripted, their clock injected).
While a spec runs, `require` finds only the plug-in folder and the stand-in,
as Lightroom's does (spec/support/helper.lua); the plug-in's specs also pass
from a lone copy of the folder, and fail when a module is missing from it.
"""

import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.lua.harness import PLUGIN_SPECS, run_busted

HERE = Path(__file__).resolve().parent
PLUGIN = HERE.parents[1] / "plugin" / "LightroomBridge.lrdevplugin"
SPECS = sorted(p.relative_to(HERE).as_posix() for p in (HERE / "spec").glob("*_spec.lua"))

pytestmark = pytest.mark.skipif(
    not (shutil.which("busted") and shutil.which("lua5.1")),
    reason="needs lua5.1 and busted: run `make system-deps`",
)


@pytest.fixture(scope="module")
def lr_server():
    """The shim's loopback test server (it also exits by itself after --max-seconds)."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "server" / "test_server.py"), "--port", "0", "--max-seconds", "300"],
        stdout=subprocess.PIPE, text=True, cwd=HERE,
    )
    line = proc.stdout.readline()
    match = re.match(r"LISTENING (\d+)", line)
    assert match, f"test server did not start: {line!r}"
    base = f"http://127.0.0.1:{match.group(1)}"
    yield base
    try:
        request = urllib.request.Request(base + "/__shutdown", data=b"{}", method="POST")
        urllib.request.urlopen(request, timeout=5).read()
        proc.wait(timeout=10)
    except Exception:
        proc.terminate()  # our own child, by its Popen handle
        proc.wait(timeout=10)
    proc.stdout.close()


@pytest.mark.parametrize("spec", SPECS)
def test_busted_spec(spec, lr_server):
    passed, out = run_busted([spec], env={"LR_TEST_BASE_URL": lr_server}, timeout=120)
    assert passed, out


def test_plugin_specs_run_from_a_lone_copy_of_the_plugin_folder(tmp_path):
    """The plug-in folder copied alone: its specs pass with only it and the stand-in on package.path."""
    copy = tmp_path / "elsewhere" / "LightroomBridge.lrdevplugin"
    shutil.copytree(PLUGIN, copy)
    passed, out = run_busted(PLUGIN_SPECS, plugin_dir=copy)
    assert passed, out


def test_a_module_missing_from_the_plugin_folder_fails_its_specs(tmp_path):
    """The control: a copy without Json.lua fails, although the repository's folder is one step away."""
    copy = tmp_path / "LightroomBridge.lrdevplugin"
    shutil.copytree(PLUGIN, copy)
    (copy / "Json.lua").unlink()
    passed, out = run_busted(["spec/plugin_wire_spec.lua"], plugin_dir=copy)
    assert not passed
    assert "module 'Json' not found" in out, out
