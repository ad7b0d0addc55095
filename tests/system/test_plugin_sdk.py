"""The plug-in against the real bridge in the SDK stand-in's hard modes (issue 15).

Each spec file under tests/lua/system_spec/ runs under real lua5.1 with busted and the
SDK stand-in, against one hub + gateway started here (BRIDGE_URL): polls cut early or
ended with LrHttp's timeout error, events reaching listeners in a task whoever caused
them, a fresh module environment stopping the old run, run-time subscriptions kept over
a resumed session, an LrHttp that serves one request at a time, and the photographer's
view (Plug-in Manager section, live status, bezel, logging, staying disconnected).
"""

import shutil
from pathlib import Path

import pytest

from tests.lua.harness import run_busted

HERE = Path(__file__).resolve().parents[1] / "lua"
SPECS = sorted(p.relative_to(HERE).as_posix() for p in (HERE / "system_spec").glob("*_spec.lua"))

pytestmark = pytest.mark.skipif(
    not (shutil.which("busted") and shutil.which("lua5.1")),
    reason="needs lua5.1 and busted: run `make system-deps`",
)


@pytest.mark.parametrize("spec", SPECS)
def test_plugin_spec_against_the_bridge(spec, shared_stack, tmp_path):
    env = {
        "BRIDGE_URL": shared_stack.base_url,
        "LR_SHIM_PREFS_FILE": "",
        "LR_SHIM_HOME": str(tmp_path),
        "LR_SHIM_LOG_DIR": str(tmp_path),
    }
    passed, out = run_busted([spec], env=env, timeout=240)
    assert passed, out
