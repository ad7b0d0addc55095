"""``bridge run``: start the Procfile's processes together, stop them all together.

The commands come from the Procfile (one source of truth with ``make run``
and the test harness). On POSIX each process gets its own process group, so
stopping it (SIGTERM, then SIGKILL after a grace period) also reaches
gunicorn's workers and nothing is orphaned. On Windows, where gunicorn does
not run, the gateway line is replaced by ``python -m services.gateway``
(uvicorn serving the same ASGI app) and processes are stopped with
``terminate()``; that path uses no fork, no POSIX signal and no fixed
folder, and ``--platform windows`` forces it on any system so it is tested.

Every line the processes print goes to this terminal and to
``<BRIDGE_LOG_DIR>/main.log``, written by this process alone.
"""

import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import services
from services.cli import exits
from services.cli.http import NotRunning
from services.logs import file_handler, log_settings, make_formatter

ROOT = Path(services.__file__).resolve().parent.parent
WINDOWS_GATEWAY = ["-m", "services.gateway"]  # with sys.executable: uvicorn alone (services/gateway/__main__.py)
GRACE_SECONDS = 10.0  # from SIGTERM to SIGKILL
READY_SECONDS = 30.0

log = logging.getLogger("bridge.run")


def find_procfile(environ=os.environ):
    """The Procfile: BRIDGE_PROCFILE, else ./Procfile, else the one beside the ``services`` package."""
    candidates = [environ.get("BRIDGE_PROCFILE"), Path.cwd() / "Procfile", ROOT / "Procfile"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise FileNotFoundError("no Procfile found (set BRIDGE_PROCFILE to its path)")


def read_procfile(path):
    """``{name: command}`` in file order."""
    commands = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, command = line.partition(":")
            commands[name.strip()] = command.strip()
    return commands


def plan(commands, windows, python=sys.executable):
    """``[(name, argv)]``: the Procfile's commands run with this Python, adapted for Windows."""
    bindir = Path(python).parent
    steps = []
    for name, command in commands.items():
        argv = shlex.split(command, posix=not windows)
        if argv[0] in ("python", "python3"):
            argv[0] = python
        elif argv[0] == "gunicorn":
            if windows:
                argv = [python] + WINDOWS_GATEWAY
            elif (bindir / "gunicorn").exists():
                argv[0] = str(bindir / "gunicorn")
        steps.append((name, argv))
    return steps


class Supervisor:
    """Child processes, their output, and one clean way to stop them all."""

    def __init__(self, steps, env, windows, out=sys.stdout, main_log=None, formatter=None):
        self.steps = steps
        self.formatter = formatter or logging.Formatter("%(message)s")
        self.env = env
        self.windows = windows
        self.out = out
        self.main_log = main_log
        self.procs = {}
        self.readers = []
        self.stopping = threading.Event()
        self.write_lock = threading.Lock()

    def _spawn_options(self):
        if not self.windows:
            return {"start_new_session": True}
        if os.name == "nt":  # pragma: no cover - real Windows only
            return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
        return {}

    def start(self):
        for name, argv in self.steps:
            self.say(f"starting {name}: {' '.join(argv)}")
            proc = subprocess.Popen(
                argv, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                **self._spawn_options(),
            )
            self.procs[name] = proc
            reader = threading.Thread(target=self._pump, args=(name, proc), daemon=True)
            reader.start()
            self.readers.append(reader)

    def _pump(self, name, proc):
        for raw in iter(proc.stdout.readline, b""):
            self.write(raw.decode("utf-8", "replace").rstrip("\r\n"))
        proc.stdout.close()

    def write(self, line):
        with self.write_lock:
            try:
                self.out.write(line + "\n")
                self.out.flush()
            except (OSError, ValueError):
                pass
            if self.main_log is not None:
                self.main_log.emit(logging.makeLogRecord({"msg": line, "levelno": logging.INFO}))

    def say(self, message):
        """A line from ``bridge run`` itself, in the services' format."""
        record = logging.LogRecord("bridge.run", logging.INFO, __file__, 0, message, (), None)
        record.service = "run"
        self.write(self.formatter.format(record))

    def exited(self):
        """``(name, code)`` of a process that has ended, or ``None``."""
        for name, proc in self.procs.items():
            code = proc.poll()
            if code is not None:
                return name, code
        return None

    def request_stop(self, *_):
        self.stopping.set()

    def stop(self):
        """Ask every process to end, wait up to the grace period, then kill what is left."""
        for name, proc in reversed(list(self.procs.items())):
            if proc.poll() is None:
                self._signal(proc, kill=False)
        deadline = time.monotonic() + GRACE_SECONDS
        for name, proc in self.procs.items():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{name} did not stop within {GRACE_SECONDS:g} s: killing it")
                self._signal(proc, kill=True)
                proc.wait(5)
        if not self.windows:
            for proc in self.procs.values():  # workers left in a group whose leader exited
                self._signal(proc, kill=True)
        for reader in self.readers:
            reader.join(2)
        codes = {name: proc.returncode for name, proc in self.procs.items()}
        self.say("stopped: " + ", ".join(f"{n} ({c})" for n, c in codes.items()))
        return codes

    def _signal(self, proc, kill):
        try:
            if self.windows:
                if kill:
                    proc.kill()
                else:
                    proc.terminate()
            else:  # the group this process leads (start_new_session): gunicorn's workers too
                os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
        except OSError:  # already gone
            pass


def _child_env(environ, log_dir):
    env = dict(environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["BRIDGE_LOG_DIR"] = log_dir
    env["BRIDGE_PARENT_PID"] = str(os.getpid())  # each process stops if this one dies (services/parentwatch.py)
    bindir = os.path.dirname(sys.executable)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    return env


def _install_signals(handler, windows):
    names = ["SIGINT", "SIGTERM"] + (["SIGBREAK"] if windows else ["SIGHUP"])
    for name in names:
        sig = getattr(signal, name, None)
        if sig is not None:
            try:
                signal.signal(sig, handler)
            except (ValueError, OSError):  # not the main thread, or not deliverable here
                pass


def wait_ready(bridge, supervisor, timeout=READY_SECONDS):
    """True once the gateway answers /ws/health with a reachable hub; False if a process died first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not supervisor.stopping.is_set():
        if supervisor.exited():
            return False
        try:
            code, body, _ = bridge.request("GET", "/ws/health", timeout=2)
            if code in (200, 401) and (code == 401 or body.get("hub", {}).get("reachable")):
                return True
        except NotRunning:
            pass
        supervisor.stopping.wait(0.2)
    return False


def run(args, bridge, out, environ=os.environ):
    """Start everything, report the dashboard's address, and wait for Ctrl-C or a process to end."""
    windows = args.platform == "windows" or (args.platform == "auto" and os.name == "nt")
    try:
        procfile = find_procfile(environ)
    except FileNotFoundError as ex:
        out.write(f"bridge run: {ex}\n")
        return exits.USAGE
    commands = read_procfile(procfile)
    if args.only:
        unknown = set(args.only) - set(commands)
        if unknown:
            out.write(f"bridge run: no process named {', '.join(sorted(unknown))} in {procfile}\n")
            return exits.USAGE
        commands = {name: cmd for name, cmd in commands.items() if name in args.only}
    level, fmt, folder, max_bytes, backups = log_settings(environ)
    log_dir = os.path.abspath(folder) if folder else ""
    main_log = file_handler(log_dir, "main", max_bytes, backups) if log_dir else None
    if main_log is not None:
        main_log.setFormatter(logging.Formatter("%(message)s"))
    env = _child_env(environ, log_dir)
    env["BRIDGE_HTTP_PORT"] = str(bridge.port)
    supervisor = Supervisor(plan(commands, windows), env, windows, out, main_log, make_formatter(fmt))
    _install_signals(supervisor.request_stop, windows)
    code = exits.OK
    try:
        supervisor.start()
        if "gateway" in commands:
            if wait_ready(bridge, supervisor):
                supervisor.say(f"bridge running: dashboard at http://{bridge.address}/ws/dashboard "
                               f"(Ctrl-C stops everything)")
            elif not supervisor.stopping.is_set():
                supervisor.say("the gateway did not come up; see the lines above")
        while not supervisor.stopping.is_set():
            ended = supervisor.exited()
            if ended is not None:
                supervisor.say(f"{ended[0]} exited with code {ended[1]}: stopping the others")
                code = exits.FAILED
                break
            supervisor.stopping.wait(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        supervisor.stop()
        if main_log is not None:
            main_log.close()
    return code
