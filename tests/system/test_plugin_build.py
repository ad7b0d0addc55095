"""The plug-in's release zip (services/plugin_package.py, which `make plugin` runs).

It holds exactly the plug-in folder's tracked files under LightroomBridge.lrplugin/
(no dkjson, no test files), is the same on every build, and, unpacked, loads as
Lightroom's require would: the plug-in's specs pass with only it and the stand-in
on package.path, and it connects to the real bridge.
"""

import shutil
import subprocess
import sys
import zipfile

import pytest

from services import plugin_package
from tests.lua.harness import PLUGIN_SPECS, LuaClient, run_busted
from tests.stack import ROOT

SOURCE = ROOT / "plugin" / "LightroomBridge.lrdevplugin"

needs_lua = pytest.mark.skipif(not (shutil.which("lua5.1") and shutil.which("busted")),
                               reason="needs lua5.1 and busted: run `make system-deps`")


def tracked_plugin_files():
    res = subprocess.run(["git", "ls-files", "-z", "--", "plugin/LightroomBridge.lrdevplugin"], cwd=ROOT,
                         capture_output=True, timeout=60)
    if res.returncode != 0:
        pytest.skip("not a git checkout: " + res.stderr.decode(errors="replace"))
    return {name.removeprefix("plugin/LightroomBridge.lrdevplugin/") for name in res.stdout.decode().split("\0") if name}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(zip path, the folder it unpacks to)."""
    path = plugin_package.build(tmp_path_factory.mktemp("dist"))
    unpacked = tmp_path_factory.mktemp("unpacked")
    with zipfile.ZipFile(path) as archive:
        archive.extractall(unpacked)
    return path, unpacked / "LightroomBridge.lrplugin"


def test_zip_holds_exactly_the_plugins_tracked_files(built):
    path, _ = built
    assert path.name == f"LightroomBridge-{plugin_package.package_version()}.lrplugin.zip"
    tracked = tracked_plugin_files()
    assert "Info.lua" in tracked and "Json.lua" in tracked
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        assert sorted(names) == sorted(f"LightroomBridge.lrplugin/{name}" for name in tracked)
        for name in tracked:
            assert archive.read(f"LightroomBridge.lrplugin/{name}") == (SOURCE / name).read_bytes(), name
    assert not [n for n in names if "dkjson" in n.lower() or "spec" in n.lower() or "test" in n.lower()]


def test_the_build_is_reproducible_and_make_plugin_runs_it(built, tmp_path):
    path, _ = built
    res = subprocess.run([sys.executable, "-m", "services.plugin_package", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    again = tmp_path / path.name
    assert res.stdout.strip() == str(again)
    assert again.read_bytes() == path.read_bytes()
    make = subprocess.run(["make", "-n", "plugin"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert make.returncode == 0 and "-m services.plugin_package" in make.stdout, make.stdout + make.stderr


def test_a_copy_outside_git_builds_the_same_files(tmp_path, built):
    """Outside a checkout (a source archive) every file but hidden ones is packed."""
    copy = tmp_path / "src" / "LightroomBridge.lrdevplugin"
    shutil.copytree(SOURCE, copy)
    (copy / ".DS_Store").write_bytes(b"junk")
    path = plugin_package.build(tmp_path / "dist", source=copy)
    with zipfile.ZipFile(path) as archive, zipfile.ZipFile(built[0]) as reference:
        assert archive.namelist() == reference.namelist()


def test_the_build_refuses_versions_that_disagree(tmp_path):
    with pytest.raises(plugin_package.PackageError, match="keep them in step"):
        plugin_package.build(tmp_path, version="9.9.9")
    assert list(tmp_path.iterdir()) == []
    assert plugin_package.info_version() == plugin_package.package_version()


@needs_lua
def test_unpacked_zip_passes_the_plugin_specs_alone(built):
    _, folder = built
    passed, out = run_busted(PLUGIN_SPECS, plugin_dir=folder)
    assert passed, out


@needs_lua
def test_unpacked_zip_connects_and_receives(built, stack, tmp_path):
    _, folder = built
    client = LuaClient(stack.base_url, tmp_path / "lua", plugin_dir=folder).start()
    try:
        client.wait("connected")
        r = stack.post("/ws/notify/job_progress", {"job_id": "built", "progress": 5})
        assert r.status == 200 and r.json["delivered"] == 1, r
        client.wait("listener", lambda e: e["data"]["job_id"] == "built")
    finally:
        client.stop()
