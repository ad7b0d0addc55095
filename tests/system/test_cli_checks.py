"""``lrbridge run`` refuses a bad setting or a taken port before it starts anything; ``checkconfig`` and ``config``.

Each ``run`` here is given a Procfile (BRIDGE_PROCFILE) whose lines would
only leave a marker file behind: a run that started any process, even for an
instant, leaves one, so "nothing was started" is checked, not assumed.
"""

import json
import signal
import socket
import subprocess
import sys

import pytest

from tests.stack import ROOT, Stack, free_port, wait_for

EXIT_USAGE, EXIT_ALREADY_RUNNING, EXIT_PORT_TAKEN = 2, 5, 6
NAMES = ("hub", "notifier", "gateway")


def free_env(tmp_path, **extra):
    """Every address on a free loopback port, the data folder in ``tmp_path``, plus ``extra``."""
    env = Stack(tmp_path / "stack").env  # free ports; nothing is started
    env.update({"BRIDGE_DATA_DIR": str(tmp_path / "data"), "BRIDGE_LOG_DIR": str(tmp_path / "logs")})
    env.update(extra)
    return env


def marker_procfile(tmp_path):
    """Each line leaves ``started-NAME`` and then waits to be stopped."""
    lines = [f"{name}: python -c \"open(r'{tmp_path / ('started-' + name)}', 'w').close(); "
             f"import time; time.sleep(120)\"" for name in NAMES]
    path = tmp_path / "Procfile.markers"
    path.write_text("\n".join(lines) + "\n")
    return path


def lrbridge(tmp_path, *args, env):
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=work, env=env,
                          capture_output=True, text=True, timeout=60)


def run_refused(tmp_path, env):
    """``lrbridge run`` with marker processes; returns the CompletedProcess after checking nothing ran."""
    env = dict(env, BRIDGE_PROCFILE=str(marker_procfile(tmp_path)), PYTHONPATH=str(ROOT))
    r = lrbridge(tmp_path, "run", env=env)
    started = sorted(p.name for p in tmp_path.glob("started-*"))
    assert started == [], f"processes were started: {started}\n{r.stdout}\n{r.stderr}"
    assert "starting " not in r.stdout
    assert not (tmp_path / "logs" / "main.log").exists()
    return r


def lines_naming(text, key):
    return [line for line in text.splitlines() if key in line]


def test_the_marker_procfile_does_start_when_all_is_well(tmp_path):
    """The control for every test below: the same run with good settings starts the marker processes."""
    env = dict(free_env(tmp_path), BRIDGE_PROCFILE=str(marker_procfile(tmp_path)), PYTHONPATH=str(ROOT))
    (tmp_path / "work").mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "services.cli", "run"], cwd=tmp_path / "work", env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(list(tmp_path.glob("started-*"))) == len(NAMES), 30, interval=0.1,
                 message="every marker process to start")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert sorted(p.name for p in tmp_path.glob("started-*")) == [f"started-{n}" for n in sorted(NAMES)]
    assert code == 0


def test_a_non_numeric_queue_size_is_one_line_naming_it_and_exit_2(tmp_path):
    r = run_refused(tmp_path, free_env(tmp_path, BRIDGE_QUEUE_SIZE="abc"))
    assert r.returncode == EXIT_USAGE, r
    (line,) = lines_naming(r.stderr, "BRIDGE_QUEUE_SIZE")
    assert "'abc'" in line and "whole number from 1 to 1000000" in line
    assert "nothing was started" in r.stderr


def test_every_bad_setting_gets_its_own_line(tmp_path):
    bad = {"BRIDGE_QUEUE_SIZE": "abc", "BRIDGE_POLL_MAX_WAIT": "-1", "BRIDGE_GATEWAY_WORKERS": "0",
           "BRIDGE_EVENTS_HOLD_SECONDS": "soon", "BRIDGE_STORE_SYNC": "sometimes", "BRIDGE_LOG_LEVEL": "loud"}
    r = run_refused(tmp_path, free_env(tmp_path, **bad))
    assert r.returncode == EXIT_USAGE, r
    for key, value in bad.items():
        (line,) = lines_naming(r.stderr, key)  # once, though hub and gateway both read BRIDGE_POLL_MAX_WAIT
        assert value in line and "must be" in line, line
    assert len([line for line in r.stderr.splitlines() if line.startswith("lrbridge: BRIDGE_")]) == len(bad)


def test_an_endpoint_without_a_scheme_is_told_about_the_scheme(tmp_path):
    r = run_refused(tmp_path, free_env(tmp_path, BRIDGE_HUB_RPC="127.0.0.1:5101"))
    assert r.returncode == EXIT_USAGE, r
    (line,) = lines_naming(r.stderr, "BRIDGE_HUB_RPC")
    assert "no scheme" in line and "tcp://" in line and "127.0.0.1:5101" in line
    assert "loopback" not in r.stderr and "BRIDGE_CURVE_DIR" not in r.stderr


@pytest.mark.parametrize("key", ["BRIDGE_EVENTS_IN", "BRIDGE_EVENTS_OUT", "BRIDGE_CLIENT_EVENTS", "BRIDGE_NOTIFIER_RPC"])
def test_every_endpoint_setting_checks_its_scheme(tmp_path, key):
    r = lrbridge(tmp_path, "checkconfig", env=free_env(tmp_path, **{key: "localhost:7000", "PYTHONPATH": str(ROOT)}))
    assert r.returncode == EXIT_USAGE
    (line,) = lines_naming(r.stderr, key)
    assert "no scheme" in line


def test_a_port_served_by_a_bridge_is_already_running_exit_5(tmp_path):
    running = Stack(tmp_path / "running").start("hub", "gateway").wait_ready()
    try:
        env = free_env(tmp_path, BRIDGE_HTTP_PORT=str(running.http_port))
        r = run_refused(tmp_path, env)
        assert r.returncode == EXIT_ALREADY_RUNNING, r
        assert f"already running at http://127.0.0.1:{running.http_port}" in r.stderr
        assert "nothing was started" in r.stderr
        assert running.get("/ws/status").status == 200  # and the running one is untouched
    finally:
        running.stop_all()


def listening_socket():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock


@pytest.mark.parametrize("key", ["BRIDGE_HTTP_PORT", "BRIDGE_HUB_RPC", "BRIDGE_EVENTS_IN", "BRIDGE_NOTIFIER_RPC"])
def test_a_port_taken_by_another_program_is_said_so_exit_6(tmp_path, key):
    with listening_socket() as other:  # listens, never answers HTTP: not a bridge
        port = other.getsockname()[1]
        value = str(port) if key == "BRIDGE_HTTP_PORT" else f"tcp://127.0.0.1:{port}"
        r = run_refused(tmp_path, free_env(tmp_path, **{key: value}))
    assert r.returncode == EXIT_PORT_TAKEN, r
    (line,) = lines_naming(r.stderr, key)
    assert f"port {port}" in line and "taken by" in line and "already running" not in line


def test_a_port_answering_http_that_is_not_a_bridge_is_taken_not_running(tmp_path):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() or True, 10,
                 message="the plain HTTP server")
        r = run_refused(tmp_path, free_env(tmp_path, BRIDGE_HTTP_PORT=str(port)))
    finally:
        server.terminate()
        server.wait(10)
    assert r.returncode == EXIT_PORT_TAKEN, r
    assert "taken by another program" in r.stderr and "BRIDGE_HTTP_PORT" in r.stderr


@pytest.mark.parametrize("command", [["status"], ["clients", "--json"], ["dashboard", "--no-open"], ["tail"],
                                     ["cleanup"], ["run"]])
def test_a_non_numeric_http_port_fails_every_command_with_one_line(tmp_path, command):
    env = free_env(tmp_path, BRIDGE_HTTP_PORT="abc", PYTHONPATH=str(ROOT))
    r = run_refused(tmp_path, env) if command == ["run"] else lrbridge(tmp_path, *command, env=env)
    assert r.returncode == EXIT_USAGE, r
    assert r.stdout == ""
    (line,) = lines_naming(r.stderr, "BRIDGE_HTTP_PORT")
    assert "'abc'" in line and "whole number" in line and "5100" not in r.stderr


def test_an_explicit_port_needs_no_good_http_port_setting(tmp_path):
    env = free_env(tmp_path, BRIDGE_HTTP_PORT="abc", PYTHONPATH=str(ROOT))
    r = lrbridge(tmp_path, "status", "--port", str(free_port()), env=env)
    assert r.returncode == 3 and "nothing answers" in r.stderr  # asked where told, found nothing


def test_checkconfig_is_0_when_good_and_2_with_one_line_per_bad_setting(tmp_path):
    env = free_env(tmp_path, PYTHONPATH=str(ROOT))
    r = lrbridge(tmp_path, "checkconfig", env=env)
    assert r.returncode == 0 and "configuration OK" in r.stdout and r.stderr == "", r
    r = lrbridge(tmp_path, "checkconfig", env=dict(env, BRIDGE_QUEUE_SIZE="abc", BRIDGE_HUB_RPC="127.0.0.1:1"))
    assert r.returncode == EXIT_USAGE and r.stdout == ""
    assert [line.split("=")[0] for line in r.stderr.splitlines()] == ["lrbridge: BRIDGE_HUB_RPC",
                                                                       "lrbridge: BRIDGE_QUEUE_SIZE"]
    r = lrbridge(tmp_path, "checkconfig", "--json", env=dict(env, BRIDGE_QUEUE_SIZE="abc"))
    assert r.returncode == EXIT_USAGE and json.loads(r.stdout)["ok"] is False
    assert list((tmp_path / "work").iterdir()) == [] and not (tmp_path / "data").exists()  # it wrote nothing


def test_config_prints_the_folders_and_every_service_settings(tmp_path):
    env = free_env(tmp_path, PYTHONPATH=str(ROOT), BRIDGE_QUEUE_SIZE="42", BRIDGE_ADMIN_TOKEN="s" * 20)
    del env["BRIDGE_LOG_DIR"], env["BRIDGE_STORE"]
    r = lrbridge(tmp_path, "config", "--json", env=env)
    assert r.returncode == 0, r
    report = json.loads(r.stdout)
    data = tmp_path / "data"
    assert report["folders"] == {"data": str(data), "state": str(data / "state"), "logs": str(data / "logs"),
                                 "keys": str(data / "keys")}
    assert set(report["settings"]) == {"hub", "notifier", "gateway", "logs"}
    assert report["settings"]["hub"]["queue_size"] == 42
    assert report["settings"]["hub"]["store"] == str(data / "state" / "hub.sqlite3")
    assert report["settings"]["gateway"]["http_port"] == int(env["BRIDGE_HTTP_PORT"])
    assert report["settings"]["gateway"]["admin_token"] == "(set)" and "s" * 20 not in r.stdout
    r = lrbridge(tmp_path, "config", env=env)
    assert r.returncode == 0 and f"  state    {data / 'state'}" in r.stdout and "queue_size" in r.stdout
    r = lrbridge(tmp_path, "config", env=dict(env, BRIDGE_QUEUE_SIZE="abc"))
    assert r.returncode == EXIT_USAGE and "BRIDGE_QUEUE_SIZE='abc'" in r.stderr


def test_version():
    from services.plugin_package import package_version

    r = subprocess.run([sys.executable, "-m", "services.cli", "--version"], cwd=ROOT, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0 and r.stdout == f"lrbridge {package_version()}\n" and package_version() == "0.1.0"
