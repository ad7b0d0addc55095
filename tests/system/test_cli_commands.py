"""``lrbridge`` commands against the real hub, notifier and gateway: output, exit codes, --json."""

import json
import subprocess
import sys

import pytest

from tests.stack import ROOT, free_port, wait_for
from tests.system.operator_support import live_stack, bridge, connect, poll


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    yield from live_stack(tmp_path_factory, "cli")


def test_status_reports_every_part_healthy(live):
    wait_for(lambda: live.get("/ws/health").json["status"] == "ok", 15, message="the notifier to be heard")
    r = bridge(live, "status")
    assert r.returncode == 0, r
    assert f"bridge at 127.0.0.1:{live.http_port}: ok" in r.stdout
    assert "hub        reachable" in r.stdout and "notifier   last heard" in r.stdout
    r = bridge(live, "status", "--json")
    report = json.loads(r.stdout)
    assert r.returncode == 0 and report["status"] == "ok"
    assert report["health"]["hub"]["reachable"] is True and report["health"]["hub"]["rtt_ms"] > 0
    assert report["summary"]["running"] is True


def test_clients_lists_a_connected_client(live):
    client_id, _ = connect(live, "lightroom", ["jobs", "photos"])
    r = bridge(live, "clients")
    assert r.returncode == 0, r
    header, *rows = r.stdout.splitlines()
    assert header.split() == ["ID", "TYPE", "NAME", "TRANSPORT", "QUEUE", "DROPPED", "LAST", "SEEN", "CHANNELS"]
    (row,) = [line for line in rows if line.startswith(client_id)]
    assert row.split()[1:4] == ["lightroom", "-", "poll"] and row.split()[-1] == "jobs,photos"
    r = bridge(live, "clients", "--json")
    listed = {c["id"]: c for c in json.loads(r.stdout)}
    assert listed[client_id]["client_type"] == "lightroom"
    assert listed[client_id]["subscriptions"] == ["jobs", "photos"]


def test_broadcast_to_a_channel_reaches_its_subscriber(live):
    client_id, headers = connect(live, "lightroom", ["photos"])
    poll(live, client_id, headers)
    r = bridge(live, "broadcast", "--channel", "photos", '{"type": "photo_imported", "photo_id": "p1"}')
    assert r.returncode == 0, r
    assert "on channel photos" in r.stdout
    (msg,) = poll(live, client_id, headers)
    assert msg["type"] == "photo_imported" and msg["photo_id"] == "p1" and msg["channel"] == "photos"
    r = bridge(live, "broadcast", "--json", "--channel", "photos", '{"type": "photo_imported", "photo_id": "p2"}')
    assert json.loads(r.stdout)["delivered"] >= 1


def test_send_to_one_client_and_its_errors(live):
    client_id, headers = connect(live, "lightroom")
    poll(live, client_id, headers)
    r = bridge(live, "send", client_id, '{"type": "reload_config", "n": 1}')
    assert r.returncode == 0 and client_id in r.stdout, r
    (msg,) = poll(live, client_id, headers)
    assert msg["type"] == "reload_config" and msg["n"] == 1

    r = bridge(live, "send", "no-such-client", '{"type": "notice"}')
    assert r.returncode == 1 and "unknown_client" in r.stderr and r.stdout == ""
    for bad in ("{not json", '["a list"]', '{"no": "type"}'):
        r = bridge(live, "send", client_id, bad)
        assert r.returncode == 2 and "lrbridge send:" in r.stderr, (bad, r)
    r = bridge(live, "broadcast", "--channel", "bad channel!", '{"type": "notice"}')
    assert r.returncode == 1 and "(bad_request)" in r.stderr


def test_jobs_lists_progress_or_says_the_route_is_missing(live):
    r = live.post("/ws/notify/job_progress", {"job_id": "cli-job", "stage": "export", "progress": 40})
    assert r.status == 200
    r = bridge(live, "jobs")
    if r.returncode == 4:  # a gateway without GET /ws/jobs
        assert "no /ws/jobs route" in r.stdout
        return
    assert r.returncode == 0, r
    assert "cli-job" in r.stdout and "40%" in r.stdout
    jobs = json.loads(bridge(live, "jobs", "--json").stdout)
    assert any(job["job_id"] == "cli-job" and job["progress"] == 40 for job in jobs)


def test_tail_prints_messages_as_they_flow(live):
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "tail", "--channel", "photos", "--count", "2", "--json"],
        cwd=ROOT, env=live.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        def tail_subscribed():
            clients = live.get("/ws/clients").json["clients"]
            return any(c["client_type"] == "cli" and c["subscriptions"] == ["photos"] for c in clients)
        wait_for(tail_subscribed, 15, message="lrbridge tail to subscribe")
        for n in (1, 2):
            r = live.post("/ws/broadcast", {"channel": "photos", "message": {"type": "photo_analyzed", "n": n}})
            assert r.status == 200 and r.json["delivered"] >= 1
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(m["type"], m["n"], m["channel"]) for m in lines] == [("photo_analyzed", 1, "photos"),
                                                                 ("photo_analyzed", 2, "photos")]
    # tail disconnects its session on the way out
    wait_for(lambda: not tail_subscribed(), 10, message="the tail session to go")


def test_tail_reads_live_by_sse_as_a_cli_client(live):
    # Two messages: the broadcast and a system_status (one a second here), in whichever order they come.
    proc = subprocess.Popen([sys.executable, "-m", "services.cli", "tail", "--count", "2"], cwd=ROOT, env=live.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def transport():
            for c in live.get("/ws/clients").json["clients"]:
                if c["client_type"] == "cli" and c.get("polling"):
                    return c.get("transport")
        assert wait_for(transport, 15, message="lrbridge tail to read") == "sse"
        live.post("/ws/broadcast", {"channel": "sessions", "message": {"type": "session_created", "session_id": "s9"}})
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0
    first, *lines = out.splitlines()
    assert first.startswith("listening on jobs, photos, sessions, system")
    assert len(lines) == 2
    ours = [line for line in lines if " sessions session_created session_id=s9" in line]
    assert len(ours) == 1
    assert all(" system system_status " in line for line in lines if line not in ours)


def test_cleanup_removes_idle_clients(live):
    client_id, _ = connect(live, "lightroom")
    r = bridge(live, "cleanup", "--json", "--minutes", "0")
    assert r.returncode == 0, r
    assert client_id in json.loads(r.stdout)["removed_clients"]
    r = bridge(live, "cleanup")
    assert r.returncode == 0 and r.stdout.startswith("removed ")


def test_nothing_answers_is_one_line_and_exit_3(tmp_path):
    port = free_port()
    for args in (["status"], ["clients", "--json"], ["tail"]):
        r = subprocess.run([sys.executable, "-m", "services.cli", *args, "--port", str(port)], cwd=ROOT,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 3, r
        assert r.stderr == f"lrbridge: nothing answers at 127.0.0.1:{port} — start it with `lrbridge run`\n"
        assert r.stdout == ""


@pytest.mark.parametrize("command", ["run", "config", "checkconfig", "status", "clients", "jobs", "broadcast", "send",
                                     "tail", "cleanup", "dashboard"])
def test_every_command_has_help(command):
    r = subprocess.run([sys.executable, "-m", "services.cli", command, "--help"], cwd=ROOT,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith(f"usage: lrbridge {command}") and "--json" in r.stdout


def test_bad_command_line_exits_2():
    r = subprocess.run([sys.executable, "-m", "services.cli", "frobnicate"], cwd=ROOT,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_operator_commands_send_the_admin_token_from_the_environment(stack_factory):
    stack = stack_factory(env={"BRIDGE_ADMIN_TOKEN": "tok-123-secret-0123456789"})
    r = bridge(stack, "clients", env={"BRIDGE_ADMIN_TOKEN": ""})
    assert r.returncode == 1 and "set BRIDGE_ADMIN_TOKEN" in r.stderr
    r = bridge(stack, "clients", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == []
    r = bridge(stack, "dashboard", "--no-open")
    assert r.stdout == f"http://127.0.0.1:{stack.http_port}/ws/dashboard#token=tok-123-secret-0123456789\n"
