"""One log format across services, JSON lines, levels, and rotation shared by several processes."""

import json
import os
import re
import subprocess
import sys

from tests.stack import ROOT, wait_for
from tests.system.operator_support import connect, poll

TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (\w+) (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: .+$")

WRITER = """
import logging, sys
from services.logs import setup_logging
log = setup_logging(sys.argv[1])
for n in range(int(sys.argv[2])):
    log.info("line %05d of %s", n, sys.argv[3], extra={"writer": sys.argv[3], "n": n})
log.debug("hidden unless DEBUG")
log.warning("with spaces", extra={"path": "a b", "empty": ""})
"""


def write_logs(tmp_path, env, count=3, writer="w1", service="svc"):
    environ = dict(os.environ, BRIDGE_LOG_DIR=str(tmp_path / "logs"), PYTHONPATH=str(ROOT), **env)
    return subprocess.Popen([sys.executable, "-c", WRITER, service, str(count), writer], cwd=ROOT, env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_text_format_has_time_service_level_logger_message_and_context(tmp_path):
    proc = write_logs(tmp_path, {})
    _, err = proc.communicate(timeout=30)
    lines = (tmp_path / "logs" / "svc.log").read_text().splitlines()
    assert lines == err.splitlines() and len(lines) == 4
    for line in lines:
        assert TEXT_LINE.match(line), line
    assert lines[0].endswith(" svc INFO svc: line 00000 of w1 writer=w1 n=0")
    assert lines[3].endswith(' svc WARNING svc: with spaces path="a b" empty=""')


def test_json_lines_and_level(tmp_path):
    proc = write_logs(tmp_path, {"BRIDGE_LOG_FORMAT": "json", "BRIDGE_LOG_LEVEL": "debug"})
    proc.communicate(timeout=30)
    entries = [json.loads(line) for line in (tmp_path / "logs" / "svc.log").read_text().splitlines()]
    assert [e["level"] for e in entries] == ["INFO", "INFO", "INFO", "DEBUG", "WARNING"]
    first = entries[0]
    assert set(first) == {"time", "service", "level", "logger", "message", "writer", "n"}
    assert first["service"] == "svc" and first["message"] == "line 00000 of w1" and first["n"] == 0
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", first["time"])

    proc = write_logs(tmp_path, {"BRIDGE_LOG_LEVEL": "WARNING"}, service="quiet")
    proc.communicate(timeout=30)
    (line,) = (tmp_path / "logs" / "quiet.log").read_text().splitlines()
    assert " WARNING " in line

    proc = write_logs(tmp_path, {"BRIDGE_LOG_LEVEL": "loud", "BRIDGE_LOG_FORMAT": "xml"}, service="bad")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "BRIDGE_LOG_LEVEL must be one of" in err and "BRIDGE_LOG_FORMAT must be" in err


def test_rotation_shared_by_several_processes_loses_no_line(tmp_path):
    env = {"BRIDGE_LOG_MAX_BYTES": "20000", "BRIDGE_LOG_BACKUPS": "100"}
    writers = [write_logs(tmp_path, env, count=1500, writer=f"w{i}", service="shared") for i in range(3)]
    for proc in writers:
        proc.communicate(timeout=60)
        assert proc.returncode == 0
    files = sorted((tmp_path / "logs").glob("shared.log*"))
    files = [f for f in files if not f.name.endswith(".lock")]
    assert len(files) > 10  # it did rotate, many times
    seen = []
    for path in files:
        assert path.stat().st_size <= 20000 + 3 * 200, path  # at most one line per writer past the limit
        seen.extend(line for line in path.read_text().splitlines() if " line " in line)
    keys = [re.search(r"line (\d+) of (w\d)", line).groups() for line in seen]
    assert len(keys) == 4500 and len(set(keys)) == 4500


def test_services_write_one_format_and_no_line_per_poll(stack_factory):
    stack = stack_factory(env={"BRIDGE_LOG_FORMAT": "json"}, services=("hub", "notifier", "gateway"))
    client_id, headers = connect(stack)
    for _ in range(20):
        poll(stack, client_id, headers)
    stack.post("/ws/notify/job_progress", {"job_id": "j", "progress": 1})
    logs = stack.workdir / "logs"
    wait_for(lambda: "/ws/notify/job_progress" in (logs / "gateway.log").read_text(), 10, message="the access line")
    for service in ("hub", "notifier", "gateway"):
        entries = [json.loads(line) for line in (logs / f"{service}.log").read_text().splitlines()]
        assert entries and all(e["service"] == service for e in entries)
        assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
        assert not any("color_message" in e for e in entries)  # uvicorn's coloured copy is left out
    gateway = [e["message"] for e in map(json.loads, (logs / "gateway.log").read_text().splitlines())]
    assert not any("/ws/poll" in m for m in gateway)  # successful polls are DEBUG
    assert any(m.startswith("POST /ws/handshake 200") for m in gateway)
    # gunicorn's own lines share the format too
    assert all(line.startswith("{") for line in stack.output("gateway").splitlines() if line.strip())
    assert "Started server process" in stack.output("gateway") and "color_message" not in stack.output("gateway")
