"""Start the bridge's real processes for tests, exactly as the Procfile starts them.

Each ``Stack`` gets its own free loopback ports and log folder, so a test
stack runs beside a dev stack. Processes are stopped by PID: SIGTERM, wait,
then SIGKILL. Readiness is waited for with a deadline, never a fixed sleep.
"""

import json
import os
import random
import shlex
import signal
import socket
import subprocess
import sys
import time
import http.client
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _die_with_parent():
    """In the child: get SIGTERM when the test process dies, even by SIGKILL (Linux only)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


_handed_out = set()


def free_port():
    """A loopback TCP port that was free a moment ago, below the kernel's ephemeral range.

    Port 0 would give an ephemeral port, the same pool the kernel draws the
    local ports of outgoing connections from: a port chosen that way can be
    taken by some client's connection before the service binds it. Ports
    under that range are never handed out implicitly, and none is given twice.
    """
    low = _ephemeral_low()
    for _ in range(1000):
        port = random.randrange(max(1024, low - 12000), low)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free loopback port below the ephemeral range")


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def procfile_commands(path=ROOT / "Procfile"):
    """``{name: command}`` from the Procfile."""
    commands = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, command = line.partition(":")
            commands[name.strip()] = command.strip()
    return commands


def running(workdir, env=None, names=("hub", "gateway", "notifier")):
    """A fixture body: a ready ``Stack`` of ``names`` to yield, stopped however the test ends."""
    stack = Stack(workdir, env)
    try:
        stack.start(*names).wait_ready()
        yield stack
    finally:
        stack.stop_all()


def wait_for(predicate, timeout=10.0, interval=0.02, message="condition"):
    """Call ``predicate`` until it returns a truthy value or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as ex:  # the condition may not be checkable yet
            last_error = ex
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last error: {last_error!r})")


class Response:
    """An HTTP answer: status, headers and the body parsed as JSON when it is JSON."""

    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers  # names in lower case
        self.raw = raw
        try:
            self.json = json.loads(raw) if raw else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return f"<Response {self.status} {self.raw[:300]!r}>"


class Stack:
    """The hub, gateway (and notifier) as subprocesses on free ports."""

    def __init__(self, workdir, env=None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.http_port = free_port()
        self.env = dict(os.environ)
        self.env.update({
            "BRIDGE_HTTP_HOST": "127.0.0.1",
            "BRIDGE_HTTP_PORT": str(self.http_port),
            "BRIDGE_HUB_RPC": f"tcp://127.0.0.1:{free_port()}",
            "BRIDGE_EVENTS_IN": f"tcp://127.0.0.1:{free_port()}",
            "BRIDGE_EVENTS_OUT": f"tcp://127.0.0.1:{free_port()}",
            "BRIDGE_CLIENT_EVENTS": f"tcp://127.0.0.1:{free_port()}",
            "BRIDGE_NOTIFIER_RPC": f"tcp://127.0.0.1:{free_port()}",
            "BRIDGE_LOG_DIR": str(self.workdir / "logs"),
            "BRIDGE_STORE": str(self.workdir / "hub.sqlite3"),  # never share a database between stacks
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
        })
        self.env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + self.env.get("PATH", "")
        self.env.update(env or {})
        self.commands = procfile_commands()
        self.procs = {}
        self.outputs = {}

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.http_port}"

    # ------------------------------------------------------------ processes
    def start(self, *names):
        """Start the named Procfile processes (all of them when none are named)."""
        for name in names or tuple(self.commands):
            if name in self.procs and self.procs[name].poll() is None:
                continue
            out = open(self.workdir / f"{name}.out", "ab")
            self.outputs[name] = out
            self.procs[name] = subprocess.Popen(
                shlex.split(self.commands[name]), cwd=ROOT, env=self.env,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        return self

    def output(self, name):
        """What a process has printed so far."""
        path = self.workdir / f"{name}.out"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_ready(self, timeout=20.0):
        """Wait until the gateway answers /ws/status with 200 (so the hub is up too)."""
        def ready():
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise AssertionError(f"{name} exited with {proc.returncode}:\n{self.output(name)[-3000:]}")
            return self.get("/ws/status", timeout=2).status == 200
        try:
            wait_for(ready, timeout, interval=0.05, message="the gateway and hub")
        except AssertionError as ex:
            logs = "\n".join(f"--- {n}\n{self.output(n)[-2000:]}" for n in self.procs)
            raise AssertionError(f"{ex}\n{logs}") from None
        return self

    def signal(self, name, sig):
        """Send ``sig`` to one process (by its PID)."""
        self.procs[name].send_signal(sig)

    def stop(self, name, timeout=10.0):
        """SIGTERM, wait, then SIGKILL; returns the exit code."""
        proc = self.procs.get(name)
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.outputs.pop(name).close()
        del self.procs[name]
        return proc.returncode

    def kill(self, name):
        """SIGKILL one process and reap it."""
        proc = self.procs.pop(name)
        proc.kill()
        proc.wait(5)
        self.outputs.pop(name).close()

    def stop_all(self):
        """Stop every process this stack started."""
        for name in list(self.procs):
            self.stop(name)

    # ----------------------------------------------------------------- HTTP
    def request(self, method, path, body=None, headers=None, timeout=10.0, raw_body=None):
        """One HTTP request to the gateway; JSON bodies are encoded for you."""
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)
        try:
            hdrs = dict(headers or {})
            if self.env.get("BRIDGE_ADMIN_TOKEN"):  # operator routes need it (docs/SECURITY.md)
                hdrs.setdefault("Authorization", f"Bearer {self.env['BRIDGE_ADMIN_TOKEN']}")
            data = raw_body
            if body is not None:
                data = json.dumps(body).encode()
                hdrs.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body if body is not None else {}, **kw)

    # ----------------------------------------------------------- shortcuts
    def handshake(self, client_type="lightroom", channels=()):
        """A new client id, subscribed to ``channels``, its welcome (and any snapshots) drained."""
        r = self.post("/ws/handshake", {"client_type": client_type, "protocol_version": "1.0"})
        assert r.status == 200, r
        client_id = r.json["client_id"]
        if channels:
            r = self.post("/ws/send", {"client_id": client_id, "message": {"type": "subscribe", "channels": list(channels)}})
            assert r.status == 200, r
        r = self.get(f"/ws/poll?client_id={client_id}")
        kinds = [m["type"] for m in r.json["messages"]]
        assert kinds[:1] == ["connection_established"], r
        assert all(k.endswith("_snapshot") for k in kinds[1:]), r
        return client_id

    def wait_parked(self, client_id, timeout=10.0):
        """Wait until ``client_id`` has a poll parked in the hub (``polling`` in /ws/clients)."""
        wait_for(lambda: any(c["id"] == client_id and c["polling"] for c in self.get("/ws/clients").json["clients"]),
                 timeout, message=f"a parked poll of {client_id}")

    def poll(self, client_id, wait=0, ack=None, timeout=None):
        """GET /ws/poll; returns the Response."""
        path = f"/ws/poll?client_id={client_id}&wait={wait}"
        if ack is not None:
            path += f"&ack={ack}"
        return self.get(path, timeout=timeout or wait + 10)
