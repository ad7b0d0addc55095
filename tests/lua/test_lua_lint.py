"""luacheck, as Lua 5.1 with the Lightroom SDK globals: the plug-in and the Lua test code."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not shutil.which("luacheck"), reason="needs luacheck: run `make system-deps`")


@pytest.mark.parametrize("config, target", [
    ("plugin/.luacheckrc", "plugin"),
    ("tests/lua/.luacheckrc", "tests/lua"),
])
def test_luacheck_clean(config, target):
    res = subprocess.run(
        ["luacheck", "--config", config, "--formatter", "plain", "--codes", target],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 0 and res.stdout.strip() == "", res.stdout + res.stderr
