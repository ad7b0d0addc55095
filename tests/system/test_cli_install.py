"""The wheel, installed as a user would install it, runs with no checkout anywhere in sight.

The wheel is built (``python -m build --wheel``) from a copy of only what a
release holds (pyproject.toml, README.md, services/), installed into a fresh
virtual environment in a temporary folder, and ``lrbridge run`` is started
from an empty folder with a temporary HOME and no BRIDGE_DATA_DIR,
XDG_DATA_HOME or PYTHONPATH. A client handshakes, subscribes and long-polls;
a backend publishes with the installed library (``services.notifier.client``
imported from the wheel); SIGTERM (SIGINT for the Windows path) stops everything. State and logs must be
in the per-user folder under that HOME, and the working folder stays empty.
"""

import http.client
import json
import shutil
import signal
import subprocess
import zipfile
import sys
import textwrap

import psutil
import pytest

from tests.stack import ROOT, Response, free_port, wait_for

PIP_TIMEOUT = 240  # from the local package cache, normally about 10 s


def sh(args, **kw):
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{args}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """``(venv folder, wheel path)``: the wheel built from a release-shaped copy, installed in a new venv."""
    base = tmp_path_factory.mktemp("install")
    src = base / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "services", src / "services", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(ROOT / "plugin" / "LightroomBridge.lrdevplugin", src / "plugin" / "LightroomBridge.lrdevplugin")
    sh([sys.executable, "-m", "build", "--wheel", "--outdir", str(base / "dist"), str(src)], timeout=PIP_TIMEOUT)
    (wheel,) = (base / "dist").glob("lightroom_bridge-*.whl")
    venv = base / "venv"
    sh([sys.executable, "-m", "venv", str(venv)], timeout=60)
    sh([str(venv / "bin" / "pip"), "install", "--quiet", str(wheel)], timeout=PIP_TIMEOUT)
    return venv, wheel


@pytest.fixture
def user(tmp_path):
    """An empty working folder, a temporary HOME, and an environment with nothing of this checkout in it."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
           "BRIDGE_STATUS_INTERVAL": "1",
           # addresses only (they are not paths): free ports, so this runs beside other bridges
           "BRIDGE_HTTP_PORT": str(free_port()),
           "BRIDGE_HUB_RPC": f"tcp://127.0.0.1:{free_port()}",
           "BRIDGE_EVENTS_IN": f"tcp://127.0.0.1:{free_port()}",
           "BRIDGE_EVENTS_OUT": f"tcp://127.0.0.1:{free_port()}",
           "BRIDGE_CLIENT_EVENTS": f"tcp://127.0.0.1:{free_port()}",
           "BRIDGE_NOTIFIER_RPC": f"tcp://127.0.0.1:{free_port()}"}
    return home, work, env


def request(port, method, path, body=None, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        resp = conn.getresponse()
        return Response(resp.status, dict(resp.getheaders()), resp.read())
    finally:
        conn.close()


PUBLISH = textwrap.dedent("""
    import sys
    import services
    from services.notifier.client import Publisher
    print(services.__file__)
    with Publisher(timeout=5, raise_on_drop=True) as publisher:
        publisher.job_progress(sys.argv[1], 40, stage="export", message="from the installed library")
""")


@pytest.mark.parametrize("platform, stop", [("posix", signal.SIGTERM), ("windows", signal.SIGINT)])
def test_the_installed_wheel_runs_from_an_empty_folder_and_keeps_files_in_the_user_folder(installed, user,
                                                                                          platform, stop):
    venv, wheel = installed
    home, work, env = user
    lrbridge = str(venv / "bin" / "lrbridge")
    version = sh([lrbridge, "--version"], cwd=work, env=env, timeout=30).stdout.strip()
    assert version.startswith("lrbridge ") and version.split()[1] in wheel.name
    data = home / ".local" / "share" / "lrbridge"
    # the plug-in's folder ships in the wheel: its zip builds from the installed copy, with every plug-in file
    r = sh([lrbridge, "plugin", str(work.parent / "zip")], cwd=work, env=env, timeout=30)
    with zipfile.ZipFile(r.stdout.strip()) as built:
        names = {n.split("/", 1)[1] for n in built.namelist() if not n.endswith("/")}
    assert names == {p.name for p in (ROOT / "plugin" / "LightroomBridge.lrdevplugin").glob("*.lua")}
    r = sh([lrbridge, "config", "--json"], cwd=work, env=env, timeout=30)
    assert json.loads(r.stdout)["folders"] == {"data": str(data), "state": str(data / "state"),
                                               "logs": str(data / "logs"), "keys": str(data / "keys")}

    out = open(work.parent / "run.out", "wb")
    proc = subprocess.Popen([lrbridge, "run", "--platform", platform], cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    port = int(env["BRIDGE_HTTP_PORT"])

    def output():
        return (work.parent / "run.out").read_text(errors="replace")

    try:
        wait_for(lambda: "bridge running: dashboard at" in output() or proc.poll() is not None, 60, interval=0.2,
                 message="lrbridge run to be ready")
        assert proc.poll() is None, output()
        tree = psutil.Process(proc.pid).children(recursive=True)
        assert all(str(venv) in " ".join(p.cmdline()) for p in tree), [p.cmdline() for p in tree]
        if platform == "windows":  # uvicorn alone: no gunicorn, no fork (one process per line)
            assert len(tree) == 3 and not any("gunicorn" in " ".join(p.cmdline()) for p in tree)

        r = request(port, "POST", "/ws/handshake", {"client_type": "lightroom", "protocol_version": "1.0"})
        assert r.status == 200, r
        client_id = r.json["client_id"]
        r = request(port, "POST", "/ws/send", {"client_id": client_id,
                                               "message": {"type": "subscribe", "channels": ["jobs"]}})
        assert r.status == 200 and r.json["response"]["type"] == "subscription_confirmed", r
        r = sh([str(venv / "bin" / "python"), "-c", PUBLISH, "wheel-job"], cwd=work, env=env, timeout=30)
        assert r.stdout.strip().startswith(str(venv)), r.stdout  # the library came from the wheel

        def progress():
            got = request(port, "GET", f"/ws/poll?client_id={client_id}&wait=10", timeout=20)
            assert got.status == 200, got
            return [m for m in got.json["messages"] if m["type"] == "job_progress"]

        (message,) = wait_for(progress, 30, message="the published job_progress")
        assert message["job_id"] == "wheel-job" and message["progress"] == 40 and message["channel"] == "jobs"
    finally:
        tree = psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
        proc.send_signal(stop)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            for p in tree:
                p.kill()
            proc.kill()
            raise
    assert code == 0, output()[-3000:]
    gone, alive = psutil.wait_procs(tree, timeout=10)
    assert alive == [], [p.cmdline() for p in alive]

    assert list(work.iterdir()) == []  # nothing written where the command was typed
    assert (data / "state" / "hub.sqlite3").is_file()
    for name in ("hub", "notifier", "gateway", "main"):
        assert (data / "logs" / f"{name}.log").stat().st_size > 0, name
    # uvicorn alone re-raises the SIGTERM it was stopped with (-15), as terminate() ends it on Windows
    stopped = "stopped: hub (0), notifier (0), gateway (" + ("0)" if platform == "posix" else "")
    assert stopped in (data / "logs" / "main.log").read_text()
