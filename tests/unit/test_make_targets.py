"""``make run`` installs the runtime dependencies only; ``make test`` the test extras as well."""

import shutil
import subprocess

import pytest

from tests.stack import ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="no make")


def planned(target, tmp_path):
    """The commands ``make TARGET`` would run for a venv that does not exist yet (``make -n``: nothing runs)."""
    r = subprocess.run(["make", "-n", target, f"VENV={tmp_path / 'venv'}"], cwd=ROOT, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r
    return [line for line in r.stdout.splitlines() if "pip install" in line]


def test_make_run_installs_no_test_extras(tmp_path):
    installs = planned("run", tmp_path)
    assert any(line.endswith("install --quiet -e .") for line in installs), installs
    assert not any("[test" in line or "[bench" in line for line in installs), installs


def test_make_run_checks_the_settings_before_honcho_starts_anything(tmp_path):
    r = subprocess.run(["make", "-n", "run", f"VENV={tmp_path / 'venv'}"], cwd=ROOT, capture_output=True, text=True,
                       timeout=30)
    lines = r.stdout.splitlines()
    check = next(i for i, line in enumerate(lines) if line.endswith("lrbridge checkconfig"))
    start = next(i for i, line in enumerate(lines) if "exec honcho start" in line)
    assert check < start


def test_make_test_installs_the_test_extras(tmp_path):
    assert any("-e '.[test]'" in line for line in planned("test", tmp_path))
