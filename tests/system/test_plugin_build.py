"""`make plugin` (plugin/build.sh): the built plug-in is complete, bundles dkjson, and connects."""

import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.lua.harness import LuaClient

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "plugin" / "LightroomBridge.lrdevplugin"

pytestmark = pytest.mark.skipif(not shutil.which("lua5.1"), reason="needs lua5.1: run `make system-deps`")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    dist = tmp_path_factory.mktemp("dist")
    res = subprocess.run(["sh", str(ROOT / "plugin" / "build.sh")], env=dict(os.environ, DIST=str(dist)),
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    return dist


def test_built_plugin_holds_every_module_and_dkjson(built):
    folder = built / "LightroomBridge.lrplugin"
    expected = {p.name for p in SOURCE.glob("*.lua")} | {"dkjson.lua"}
    assert {p.name for p in folder.iterdir()} == expected
    assert "David Heiko Kolf" in (folder / "dkjson.lua").read_text()  # its licence notice travels with it
    with zipfile.ZipFile(built / "LightroomBridge.lrplugin.zip") as archive:
        names = {n for n in archive.namelist() if not n.endswith("/")}
    assert names == {f"LightroomBridge.lrplugin/{name}" for name in expected}


def test_built_plugin_connects_and_receives(built, stack, tmp_path):
    client = LuaClient(stack.base_url, tmp_path / "lua", plugin_dir=built / "LightroomBridge.lrplugin").start()
    try:
        client.wait("connected")
        r = stack.post("/ws/notify/job_progress", {"job_id": "built", "progress": 5})
        assert r.status == 200 and r.json["delivered"] == 1, r
        client.wait("listener", lambda e: e["data"]["job_id"] == "built")
    finally:
        client.stop()
