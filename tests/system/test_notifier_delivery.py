"""Backend events through the real notifier and hub to long-polling clients, and back."""

import re
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import zmq

from services import protocol
from services.notifier.client import Listener, Publisher
from tests.stack import ROOT, Stack, wait_for
from tests.system.notifier_support import collect, handshake, has, wait_for_notifier

ISO_Z = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"


@pytest.fixture(scope="module")
def bridge(tmp_path_factory):
    """Hub, gateway and notifier (sampler off, so channels carry only what a test sends)."""
    stack = Stack(tmp_path_factory.mktemp("notifier"), {"BRIDGE_STATUS_INTERVAL": "0", "BRIDGE_QUEUE_SIZE": "1000"})
    stack.start("hub", "gateway", "notifier").wait_ready()
    publisher = Publisher(stack.env["BRIDGE_NOTIFIER_RPC"], timeout=2.0, raise_on_drop=True)
    wait_for_notifier(stack, publisher)
    stack.publisher = publisher
    yield stack
    publisher.close()
    stack.stop_all()


@pytest.fixture
def ws(bridge):
    return bridge.publisher


def marker(ws):
    """Send a marker to every client; returns its token (everything sent before it has arrived by then)."""
    token = uuid.uuid4().hex
    ws.broadcast({"type": "marker", "token": token})
    return token


def until_marker(stack, client_id, token):
    """Every message the client got before the marker."""
    got = collect(stack, client_id, has("token", token))
    return [m for m in got if m.get("token") != token]


def test_each_application_type_reaches_a_subscribed_client(bridge, ws):
    client = handshake(bridge, "lightroom", channels=["jobs", "photos", "sessions", "system"])
    assert ws.job_created("job-1", job_type="analysis", name="Analyse 3 photos", total=3)
    assert ws.job_started("job-1", stage="loading")
    assert ws.job_progress("job-1", 50, stage="processing", message="Applying settings...")
    assert ws.job_completed("job-1", result={"photos": 3})
    assert ws.job_failed("job-2", "disk full")
    assert ws.photo_imported("photo-7", path="/photos/a.dng", job_id="job-1")
    assert ws.photo_analyzed("photo-7", analysis={"faces": 2}, job_id="job-1")
    assert ws.session_created("session-1", name="Import")
    assert ws.system_status({"cpu_usage": 45.2, "gpu_temp": 62})
    assert ws.resource_warning("memory", 93.0, 90.0, message="Memory usage is high")
    got = collect(bridge, client, lambda got: len(got) >= 10)
    by_type = {m["type"]: m for m in got}
    assert [m["type"] for m in got] == [
        "job_created", "job_started", "job_progress", "job_completed", "job_failed",
        "photo_imported", "photo_analyzed", "session_created", "system_status", "resource_warning",
    ]
    assert by_type["job_created"]["total"] == 3 and by_type["job_created"]["job_type"] == "analysis"
    assert by_type["job_started"]["stage"] == "loading"
    progress = by_type["job_progress"]
    assert (progress["job_id"], progress["progress"], progress["stage"], progress["message"]) == (
        "job-1", 50, "processing", "Applying settings...")
    assert by_type["job_completed"]["result"] == {"photos": 3}
    assert by_type["job_failed"]["error"] == "disk full"
    assert by_type["photo_imported"]["path"] == "/photos/a.dng"
    assert by_type["photo_analyzed"]["analysis"] == {"faces": 2}
    assert by_type["session_created"]["session_id"] == "session-1"
    assert by_type["system_status"]["status"] == {"cpu_usage": 45.2, "gpu_temp": 62}
    warning = by_type["resource_warning"]
    assert (warning["resource"], warning["value"], warning["threshold"], warning["level"]) == ("memory", 93.0, 90.0, "warning")
    channels = {m["type"]: m["channel"] for m in got}
    assert channels == {
        "job_created": "jobs", "job_started": "jobs", "job_progress": "jobs", "job_completed": "jobs",
        "job_failed": "jobs", "photo_imported": "photos", "photo_analyzed": "photos",
        "session_created": "sessions", "system_status": "system", "resource_warning": "system",
    }
    for message in got:
        assert message["timestamp"].endswith("Z") and isinstance(message["seq"], int)


def test_seed_api_broadcast_and_notification(bridge, ws):
    subscriber = handshake(bridge, "lightroom", channels=["jobs"])
    assert ws.broadcast({"type": "job_progress", "job_id": "job123", "progress": 50}, channel="jobs")
    assert ws.send_websocket_notification("job_progress", {"job_id": "job123", "stage": "processing", "progress": 60})
    assert ws.send_websocket_notification("job_complete", {"job_id": "job123", "success": True, "result": {"n": 1}})
    assert ws.broadcast({"type": "system_notice", "text": "to everyone"})
    got = collect(bridge, subscriber, has("type", "system_notice"))
    assert [(m["type"], m.get("channel")) for m in got] == [
        ("job_progress", "jobs"), ("job_progress", "jobs"), ("job_completed", "jobs"), ("system_notice", None)]
    assert got[1]["stage"] == "processing" and got[2]["result"] == {"n": 1}


def test_channel_filtering(bridge, ws):
    jobs = handshake(bridge, "lightroom", channels=["jobs"])
    photos = handshake(bridge, "lightroom", channels=["photos"])
    nothing = handshake(bridge, "lightroom")
    ws.job_progress("job-f", 10)
    ws.photo_imported("photo-f")
    ws.broadcast({"type": "custom", "n": 1}, channel="custom-channel")
    token = marker(ws)
    assert [m["type"] for m in until_marker(bridge, jobs, token)] == ["job_progress"]
    assert [m["type"] for m in until_marker(bridge, photos, token)] == ["photo_imported"]
    assert until_marker(bridge, nothing, token) == []


def test_send_to_client_and_to_client_type(bridge, ws):
    first = handshake(bridge, "lightroom")
    second = handshake(bridge, "lightroom")
    dashboard = handshake(bridge, "dashboard")
    assert ws.send_to_client(first, {"type": "notification", "message": "Hello"})
    assert ws.send_to_client_type("lightroom", {"type": "reload_config", "config": {"k": 1}})
    assert ws.send_to_client_type("dashboard", {"type": "refresh"})
    token = marker(ws)
    first_got = until_marker(bridge, first, token)
    assert [m["type"] for m in first_got] == ["notification", "reload_config"]
    assert first_got[0]["message"] == "Hello" and first_got[1]["config"] == {"k": 1}
    assert [m["type"] for m in until_marker(bridge, second, token)] == ["reload_config"]
    assert [m["type"] for m in until_marker(bridge, dashboard, token)] == ["refresh"]


def test_bad_events_from_any_language_are_rejected_and_the_notifier_carries_on(bridge):
    """Raw pyzmq, as docs/BACKENDS.md shows: a wrong tag, a bad progress, then a good event."""
    client = handshake(bridge, "lightroom", channels=["jobs"])
    ctx = zmq.Context()
    try:
        push = ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 2000)
        push.connect(bridge.env["BRIDGE_EVENTS_IN"])
        bad_progress = protocol.encode_ingest(protocol.publish_event(
            "channel", {"type": "job_progress", "job_id": "bad", "progress": 150}, "jobs"))
        push.send_multipart([b"OTHER/9", bad_progress[1]])
        push.send_multipart(bad_progress)
        push.send_multipart(protocol.encode_ingest({"target": "channel", "message": {"type": "job_progress"}}))
        push.send_multipart(protocol.encode_ingest(protocol.publish_event(
            "channel", {"type": "job_progress", "job_id": "good", "progress": 100}, "jobs")))
        push.close()
    finally:
        ctx.term()
    got = collect(bridge, client, has("job_id", "good"))
    assert [m["job_id"] for m in got] == ["good"]


def test_two_hundred_short_lived_publishers_lose_nothing(bridge):
    """200 processes: each connects, publishes one event and exits at once; all arrive."""
    count = 200
    client = handshake(bridge, "lightroom", channels=["jobs"])
    run = uuid.uuid4().hex[:8]
    received = set()
    done = threading.Event()

    def poll_all():
        deadline = time.monotonic() + 90
        while len(received) < count and time.monotonic() < deadline and not done.is_set():
            r = bridge.poll(client, wait=1)
            received.update(m["job_id"] for m in r.json["messages"] if m["job_id"].startswith(run))

    poller = threading.Thread(target=poll_all, daemon=True)
    poller.start()
    code = "import sys; from services.notifier.client import job_created; sys.exit(0 if job_created(sys.argv[1]) else 3)"
    env = dict(bridge.env)

    def publish_one(i):
        return subprocess.run(
            [sys.executable, "-c", code, f"{run}-{i}"], cwd=ROOT, env=env, timeout=30,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )

    started = time.monotonic()
    try:
        with ThreadPoolExecutor(4) as pool:  # spawning dominates; a few at a time keeps it short
            results = list(pool.map(publish_one, range(count)))
        failed = [r for r in results if r.returncode != 0]
        assert not failed, failed[0].stdout.decode(errors="replace")[-2000:]
        wait_for(lambda: len(received) >= count, 30, message=f"{count} events (have {len(received)})")
    finally:
        done.set()
        poller.join(5)
    assert received == {f"{run}-{i}" for i in range(count)}
    assert time.monotonic() - started < 90


def test_plugin_messages_reach_a_backend_listener_and_are_not_rebroadcast(bridge, ws):
    plugin = handshake(bridge, "lightroom", channels=["jobs"])
    r = bridge.post("/ws/send", {"client_id": plugin, "message": {
        "type": "register", "client_type": "lightroom", "client_name": "Lightroom Classic Plugin"}})
    assert r.status == 200
    watcher = handshake(bridge, "dashboard", channels=["jobs"])
    with Listener(types=["job_progress"], endpoint=bridge.env["BRIDGE_CLIENT_EVENTS"]) as listener:
        def send_and_hear():
            r = bridge.post("/ws/send", {"client_id": plugin, "message": {
                "type": "job_progress", "job_id": "lr-1", "stage": "export", "progress": 40}})
            assert r.status == 200 and r.json["response"]["type"] == "ack", r
            return listener.receive(timeout=0.2)

        # A SUB hears only what is sent after its subscription reached the hub: resend until it does.
        event = wait_for(send_and_hear, 10, interval=0, message="the plugin's job_progress at the listener")
    assert event.type == "job_progress"
    assert event.message == {"type": "job_progress", "job_id": "lr-1", "stage": "export", "progress": 40}
    assert (event.client_id, event.client_type, event.client_name) == (plugin, "lightroom", "Lightroom Classic Plugin")
    assert event.timestamp.endswith("Z")
    # The hub hands client-sent messages to backends only: other subscribers of "jobs" do not get them.
    token = marker(ws)
    assert until_marker(bridge, watcher, token) == []


def test_listener_handlers_run_on_a_thread(bridge):
    plugin = handshake(bridge, "lightroom")
    heard = []
    arrived = threading.Event()
    listener = Listener(endpoint=bridge.env["BRIDGE_CLIENT_EVENTS"])

    @listener.on("error")
    def on_error(event):
        heard.append(event)
        arrived.set()

    listener.on("*", lambda event: None)
    listener.start()
    try:
        def send_and_hear():
            bridge.post("/ws/send", {"client_id": plugin, "message": {
                "type": "error", "error_type": "processing_error", "message": "Failed to apply settings"}})
            return arrived.wait(0.2)

        wait_for(send_and_hear, 10, interval=0, message="the handler to run")
    finally:
        listener.close()
    assert heard[0].client_id == plugin and heard[0].message["error_type"] == "processing_error"


def test_module_functions_use_the_bridge_environment(bridge):
    """The seed's import-and-call API from a separate process, endpoints from BRIDGE_* variables."""
    client = handshake(bridge, "lightroom", channels=["jobs"])
    code = (
        "from services.notifier.client import get_websocket_fallback, send_websocket_notification, job_progress\n"
        "ws = get_websocket_fallback()\n"
        "assert ws.broadcast({'type': 'job_progress', 'job_id': 'env-1', 'progress': 1}, channel='jobs')\n"
        "assert send_websocket_notification('job_progress', {'job_id': 'env-2', 'progress': 2}, channel='jobs')\n"
        "assert job_progress('env-3', 3, stage='s')\n"
        "try:\n"
        "    job_progress('env-4', 101)\n"
        "except ValueError:\n"
        "    pass\n"
        "else:\n"
        "    raise SystemExit('progress 101 was accepted')\n"
    )
    env = dict(bridge.env, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, timeout=30, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    got = collect(bridge, client, has("job_id", "env-3"))
    assert [m["job_id"] for m in got] == ["env-1", "env-2", "env-3"]


def test_example_pipeline_publishes_a_good_and_a_failing_job(bridge):
    client = handshake(bridge, "lightroom", channels=["jobs"])
    proc = subprocess.run(
        [sys.executable, "examples/pipeline.py", "--steps", "4", "--delay", "0", "--listen", "0"],
        cwd=ROOT, env=bridge.env, timeout=30, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 dropped" in proc.stdout
    got = collect(bridge, client, has("type", "job_failed"))
    assert [m["type"] for m in got] == (
        ["job_created", "job_started"] + ["job_progress"] * 4 + ["job_completed"]
        + ["job_created", "job_started"] + ["job_progress"] * 1 + ["job_failed"])
    assert [m["progress"] for m in got if m["type"] == "job_progress"][:4] == [25, 50, 75, 100]


def test_the_raw_pyzmq_example_in_the_docs_works(bridge):
    """docs/BACKENDS.md's example for services that do not use the library, run as written."""
    client = handshake(bridge, "lightroom", channels=["jobs"])
    doc = (ROOT / "docs" / "BACKENDS.md").read_text()
    code = re.search(r"Raw pyzmq, without the library:\n\n```python\n(.*?)```", doc, re.S).group(1)
    exec(code.replace("tcp://127.0.0.1:5102", bridge.env["BRIDGE_EVENTS_IN"]), {})
    got = collect(bridge, client, has("job_id", "job123"))
    assert got[-1]["progress"] == 50 and got[-1]["stage"] == "processing" and got[-1]["channel"] == "jobs"
