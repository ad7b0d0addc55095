"""Run the plug-in's Lua client (tests/lua/drivers/client_driver.lua) under lua5.1 for system tests.

``LuaClient`` starts the driver as a subprocess against a gateway, collects
the JSON lines it prints, and lets a test wait for them with a deadline. It
sends the driver commands through the bridge itself (POST /ws/send/<client_id>
with a ``test_command`` message), and stops the process by its PID.
"""

import json
import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path

from tests.stack import wait_for

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "drivers" / "client_driver.lua"
LUA = shutil.which("lua5.1")
PLUGIN_SPECS = sorted(p.relative_to(HERE).as_posix() for p in (HERE / "spec").glob("plugin_*_spec.lua"))


def run_busted(specs, plugin_dir=None, env=None, timeout=300):
    """Run busted (under lua5.1, TAP output) on ``specs`` from tests/lua; returns ``(passed, output)``.

    ``plugin_dir`` is the folder the specs' ``require`` may load plug-in modules from
    (LR_PLUGIN_DIR, spec/support/helper.lua); by default the repository's plug-in folder.
    """
    run_env = dict(os.environ, LR_SHIM_LOG_DIR=os.environ.get("TMPDIR", "/tmp"))
    run_env.update(env or {})
    if plugin_dir is not None:
        run_env["LR_PLUGIN_DIR"] = str(plugin_dir)
    res = subprocess.run(["busted", "--lua=lua5.1", "-o", "TAP", *specs], cwd=HERE, env=run_env,
                         capture_output=True, text=True, timeout=timeout)
    out = res.stdout + res.stderr
    failed = [line for line in res.stdout.splitlines() if line.startswith("not ok")]
    ran = any(line.startswith("ok ") for line in res.stdout.splitlines())
    return res.returncode == 0 and not failed and ran, out


class LuaClient:
    """One Lua client process; ``events`` holds every line it printed, parsed."""

    def __init__(self, base_url, workdir, options=None, failing_listener=False, deadline=60, plugin_dir=None,
                 prefs_file=None, env=None):
        self.base_url = base_url
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_dir = self.workdir / "lrlogs"
        self.log_dir.mkdir(exist_ok=True)
        self.env = dict(os.environ)
        self.env.update(env or {})  # e.g. what a command the plug-in starts (LrTasks.execute) should see
        self.env.update({
            "BRIDGE_URL": base_url,
            "DRIVER_OPTIONS": json.dumps(options or {}),
            "DRIVER_DEADLINE": str(deadline),
            "DRIVER_FAILING_LISTENER": "1" if failing_listener else "0",
            "LR_SHIM_LOG_DIR": str(self.log_dir),
            "LR_SHIM_EXECUTE_LOG_DIR": str(self.log_dir),
        })
        if plugin_dir is not None:
            self.env["PLUGIN_DIR"] = str(plugin_dir)
        # LrPrefs in a file (tests/lua/lr_shim/LrPrefs.lua): a later client with the same file is
        # the same Lightroom started again
        self.env["LR_SHIM_PREFS_FILE"] = str(prefs_file) if prefs_file is not None else ""
        self.prefs_file = None if prefs_file is None else Path(prefs_file)
        self.deadline = deadline
        self.events = []
        self._lock = threading.Lock()
        self.proc = None
        self._reader = None
        self._stderr = None

    def start(self):
        """Start the driver; returns self once it printed ``ready``."""
        self._stderr = open(self.workdir / "lua.stderr", "wb")
        self.proc = subprocess.Popen(
            [LUA, str(DRIVER)], cwd=HERE, env=self.env, stdout=subprocess.PIPE,
            stderr=self._stderr, start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, name="lua-client-reader", daemon=True)
        self._reader.start()
        self.wait("ready", timeout=10)
        return self

    def _read(self):
        for raw in self.proc.stdout:
            try:
                record = json.loads(raw)
            except ValueError:
                record = {"ev": "garbage", "raw": raw.decode(errors="replace")}
            with self._lock:
                self.events.append(record)

    # ------------------------------------------------------------ reading
    def of(self, ev, type_=None):
        """Every event named ``ev`` (and of message type ``type_`` when given) so far."""
        with self._lock:
            found = [e for e in self.events if e.get("ev") == ev]
        if type_ is not None:
            found = [e for e in found if e.get("type") == type_ or (e.get("data") or {}).get("type") == type_]
        return found

    def wait(self, ev, predicate=None, timeout=15.0, count=1, type_=None):
        """Wait until ``count`` events named ``ev`` match ``predicate``; returns them."""
        def check():
            if self.proc.poll() is not None and self._reader is not None and not self._reader.is_alive():
                matches = [e for e in self.of(ev, type_) if predicate is None or predicate(e)]
                if len(matches) >= count:
                    return matches
                raise AssertionError(f"the Lua client exited with {self.proc.returncode}:\n{self.describe()}")
            matches = [e for e in self.of(ev, type_) if predicate is None or predicate(e)]
            return matches if len(matches) >= count else None
        try:
            return wait_for(check, timeout, interval=0.02, message=f"{count} x {ev!r} from the Lua client")
        except AssertionError as ex:
            raise AssertionError(f"{ex}\n{self.describe()}") from None

    @property
    def client_id(self):
        """The client id of the latest ``connected`` event."""
        connected = self.of("connected")
        return connected[-1]["data"]["client_id"] if connected else None

    def prefs(self):
        """What the plug-in stored in LrPrefs (needs ``prefs_file``), by key."""
        if self.prefs_file is None or not self.prefs_file.exists():
            return {}
        return next(iter(json.loads(self.prefs_file.read_text()).values()), {})

    def log_lines(self):
        """What the plug-in wrote through LrLogger (the Lightroom log file)."""
        path = self.log_dir / "LightroomBridge.log"
        return path.read_text().splitlines() if path.exists() else []

    def stderr(self):
        path = self.workdir / "lua.stderr"
        return path.read_text(errors="replace") if path.exists() else ""

    def describe(self):
        with self._lock:
            tail = self.events[-30:]
        lines = "\n".join(json.dumps(e)[:400] for e in tail)
        return f"--- last events\n{lines}\n--- stderr\n{self.stderr()[-2000:]}\n--- log\n" + "\n".join(self.log_lines()[-20:])

    # ------------------------------------------------------------ driving
    def command(self, stack, action, **fields):
        """Send the driver a ``test_command`` through the bridge (to its current client id)."""
        message = dict(fields, type="test_command", action=action)
        r = stack.post(f"/ws/send/{self.client_id}", {"message": message})
        assert r.status == 200 and r.json["delivered"] == 1, r
        return r

    def wait_exit(self, timeout=15.0):
        """Wait for the process to end; returns its exit code."""
        self.proc.wait(timeout)
        self._reader.join(5)
        return self.proc.returncode

    def stop(self):
        """Terminate the process (by its PID) if it still runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._reader is not None:
            self._reader.join(5)
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
