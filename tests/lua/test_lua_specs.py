"""Run the Lua specs (busted, under lua5.1): the shim's own and the plug-in's pure logic.

One pytest item per spec file. The shim's HTTP specs talk to
server/test_server.py, started once on a free loopback port; the plug-in
specs need no server (their HTTP is scripted, their clock injected).
"""

import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
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
    env = dict(os.environ, LR_TEST_BASE_URL=lr_server, LR_SHIM_LOG_DIR=os.environ.get("TMPDIR", "/tmp"))
    res = subprocess.run(
        ["busted", "--lua=lua5.1", "-o", "TAP", spec],
        cwd=HERE, env=env, capture_output=True, text=True, timeout=120,
    )
    out = res.stdout + res.stderr
    failed = [line for line in res.stdout.splitlines() if line.startswith("not ok")]
    assert res.returncode == 0 and not failed, out
    assert re.search(r"^ok \d+", res.stdout, re.M), "no test ran:\n" + out
