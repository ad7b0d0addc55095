"""``lrbridge run``: check the settings and ports, start the bridge's processes together, stop them all together.

The commands come from the process table in the package (services/procfile.py,
from which the Procfile that ``make run`` and the test harness read is
written), or from the Procfile named by BRIDGE_PROCFILE. Before anything is
started every setting of every process is checked (one line per bad one,
exit 2) and so is every port it will listen on: a bridge already answering at
the gateway's address is exit 5, a port held by another program exit 6.

On POSIX each process gets its own process group, so stopping it (SIGTERM,
then SIGKILL after a grace period) also reaches gunicorn's workers and
nothing is orphaned. On Windows, where gunicorn does not run, the gateway
line is replaced by ``python -m services.gateway`` (uvicorn serving the same
ASGI app) and processes are stopped with ``terminate()``; that path uses no
fork, no POSIX signal and no fixed folder, and ``--platform windows`` forces
it on any system so it is tested.

Every line the processes print goes to this terminal and to
``<BRIDGE_LOG_DIR>/main.log``, written by this process alone; the store and
the logs are in the per-user data folder unless BRIDGE_STORE/BRIDGE_LOG_DIR
say otherwise (services/paths.py), whatever folder this was started in.
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

import psutil

from services import procfile
from services.cli import checks, exits
from services.cli.http import Bridge, NotRunning
from services.gateway.config import load_config as gateway_config
from services.logs import file_handler, log_settings, make_formatter

WINDOWS_GATEWAY = ["-m", "services.gateway"]  # with sys.executable: uvicorn alone (services/gateway/__main__.py)
GRACE_SECONDS = 10.0  # from SIGTERM to SIGKILL
READY_SECONDS = 30.0

log = logging.getLogger("lrbridge.run")
BUILT_IN = "the built-in process table"


def process_commands(environ=os.environ):
    """``({name: command}, where from)``: the Procfile at BRIDGE_PROCFILE, else the package's own table.

    Never a Procfile that happens to lie in the working folder: an installed
    ``lrbridge`` starts the same processes wherever it is typed.
    """
    path = environ.get("BRIDGE_PROCFILE")
    if not path:
        return procfile.commands(), BUILT_IN
    if not Path(path).is_file():
        raise FileNotFoundError(f"BRIDGE_PROCFILE={path}: no such file")
    return procfile.read(path), path


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
        """A line from ``lrbridge run`` itself, in the services' format."""
        record = logging.LogRecord("lrbridge.run", logging.INFO, __file__, 0, message, (), None)
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
    """True once our gateway answers /ws/health with a reachable hub; False if a process died first.

    The answer must come from one of the processes started here (its ``pid``),
    not from another bridge that took the port after the start-up check.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not supervisor.stopping.is_set():
        if supervisor.exited():
            return False
        try:
            code, body, _ = bridge.request("GET", "/ws/health", timeout=2)
            if code == 401:  # the admin token is not ours to know: it answers, which is all we can tell
                return True
            if code == 200 and body.get("hub", {}).get("reachable") and _ours(supervisor, body):
                return True
        except NotRunning:
            pass
        supervisor.stopping.wait(0.2)
    return False


def _ours(supervisor, health):
    pid = (health.get("gateway") or {}).get("pid")
    if pid is None:  # an older gateway does not say
        return True
    family = set()
    for proc in supervisor.procs.values():
        family.add(proc.pid)
        try:
            family.update(child.pid for child in psutil.Process(proc.pid).children(recursive=True))
        except psutil.Error:
            pass
    return pid in family


def run(args, out, environ=os.environ, err=None):
    """Check, start everything, report the dashboard's address, and wait for Ctrl-C or a process to end."""
    err = err or sys.stderr
    windows = args.platform == "windows" or (args.platform == "auto" and os.name == "nt")
    try:
        commands, source = process_commands(environ)
    except FileNotFoundError as ex:
        out.write(f"lrbridge run: {ex}\n")
        return exits.USAGE
    if args.only:
        unknown = set(args.only) - set(commands)
        if unknown:
            out.write(f"lrbridge run: no process named {', '.join(sorted(unknown))} in {source}\n")
            return exits.USAGE
        commands = {name: cmd for name, cmd in commands.items() if name in args.only}
    if args.port is not None:
        environ = dict(environ, BRIDGE_HTTP_PORT=str(args.port))
    code = preflight(commands, environ, err)
    if code != exits.OK:
        return code
    level, fmt, folder, max_bytes, backups = log_settings(environ)
    log_dir = os.path.abspath(folder) if folder else ""
    env = _child_env(environ, log_dir)
    main_log = file_handler(log_dir, "main", max_bytes, backups) if log_dir else None
    if main_log is not None:
        main_log.setFormatter(logging.Formatter("%(message)s"))
    config = gateway_config(env)
    bridge = Bridge(checks.connect_host(config.http_host), config.http_port,
                    env.get("BRIDGE_ADMIN_TOKEN") or None, timeout=args.timeout)
    supervisor = Supervisor(plan(commands, windows), env, windows, out, main_log, make_formatter(fmt))
    _install_signals(supervisor.request_stop, windows)
    code = exits.OK
    try:
        supervisor.start()
        if "gateway" in commands:
            if wait_ready(bridge, supervisor):
                supervisor.say(f"bridge running: dashboard at http://{bridge.address}/ws/dashboard "
                               f"(Ctrl-C stops everything); logs in {log_dir or 'stderr only'}")
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


def preflight(commands, env, err):
    """Every setting, then every listen address, of the processes about to start; an exit code, OK to go on."""
    problems = checks.settings_problems(env, names=set(commands))
    if problems:
        for line in problems:
            print(f"lrbridge: {line}", file=err)
        print(f"lrbridge run: {len(problems)} bad setting(s): nothing was started "
              "(`lrbridge checkconfig` checks again without starting anything)", file=err)
        return exits.USAGE
    try:
        checks.check_ports(list(commands), env)
    except checks.PortProblem as ex:
        print(f"lrbridge run: {ex}; nothing was started", file=err)
        return exits.ALREADY_RUNNING if ex.running else exits.PORT_TAKEN
    return exits.OK
