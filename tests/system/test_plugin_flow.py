"""The Lightroom plug-in's client, run under real lua5.1, against the real hub, notifier and gateway.

Each test starts the Lua client (tests/lua/drivers/client_driver.lua) as a
subprocess; it prints what its handlers and listeners receive as JSON lines.
Backends publish with the notifier's library and listen with its Listener.
"""

import itertools
import shutil

import pytest

from services.notifier.client import Listener, Publisher
from tests.stack import wait_for

pytestmark = pytest.mark.skipif(not shutil.which("lua5.1"), reason="needs lua5.1: run `make system-deps`")

_probes = itertools.count()


@pytest.fixture
def full_stack(stack_factory):
    """hub + notifier + gateway."""
    return stack_factory(services=("hub", "notifier", "gateway"))


@pytest.fixture
def publisher(full_stack):
    """A backend's publisher, proven connected end to end before the test uses it."""
    pub = Publisher(endpoint=full_stack.env["BRIDGE_NOTIFIER_RPC"], timeout=2.0)
    probe_id = full_stack.handshake("probe", channels=["probe"])

    def probe_arrives():
        pub.broadcast({"type": "probe", "n": next(_probes)}, channel="probe")
        r = full_stack.poll(probe_id, wait=0.2)
        return any(m["type"] == "probe" for m in r.json["messages"])

    wait_for(probe_arrives, 20, interval=0, message="an event through the notifier")
    full_stack.post("/ws/disconnect", {"client_id": probe_id})
    yield pub
    pub.close()


@pytest.fixture
def listener(full_stack):
    """A backend's listener for what clients send, proven subscribed before the test uses it."""
    lst = Listener(endpoint=full_stack.env["BRIDGE_CLIENT_EVENTS"])
    probe_id = full_stack.handshake("probe")

    def probe_heard():
        full_stack.post("/ws/send", {"client_id": probe_id, "message": {"type": "probe"}})
        event = lst.receive(timeout=0.2)
        return event is not None and event.client_id == probe_id

    wait_for(probe_heard, 20, interval=0, message="the listener's subscription")
    full_stack.post("/ws/disconnect", {"client_id": probe_id})
    yield lst
    lst.close()


def receive_until(listener, client_id, message_type, timeout=10.0):
    """The next event of ``message_type`` sent by ``client_id`` (others are skipped)."""
    def next_event():
        event = listener.receive(timeout=0.2)
        if event is not None and event.client_id == client_id and event.type == message_type:
            return event
        return None
    return wait_for(next_event, timeout, interval=0, message=f"{message_type} from {client_id}")


def test_connection_flow_and_disconnect_stop_every_task(stack, lua_clients):
    """handshake -> register -> subscribe -> poll; disconnect() ends every task at once."""
    client = lua_clients(stack)
    connected = client.wait("connected")[0]["data"]
    client_id = connected["client_id"]
    assert connected["resumed"] is False
    welcome = client.wait("message", type_="connection_established")[0]["data"]
    assert welcome["seq"] == 1

    clients = stack.get("/ws/clients").json["clients"]
    me = next(c for c in clients if c["id"] == client_id)
    assert me["client_type"] == "lightroom"
    assert me["client_name"] == "Lightroom Classic Plugin"
    assert sorted(me["subscriptions"]) == ["jobs", "photos", "system"]

    # The client's poll is parked for up to 25 s; disconnect must not wait for it.
    client.command(stack, "disconnect", delay=0.3)
    stopped = client.wait("stopped", timeout=10)[0]
    assert stopped["tasks"] == 0 and stopped["errors"] == 0
    assert stopped["seconds"] < 2.0, stopped
    assert client.wait_exit() == 0
    assert client.of("disconnected")[-1]["data"]["reason"] == "disconnect"
    assert all(c["id"] != client_id for c in stack.get("/ws/clients").json["clients"])
    states = [line.split("connection: ", 1)[1] for line in client.log_lines() if "connection: " in line]
    assert [s.split(" (")[0] for s in states] == [
        "disconnected -> connecting", "connecting -> connected", "connected -> disconnected",
    ]


def test_backend_events_reach_the_right_handlers_and_listeners(full_stack, publisher, lua_clients):
    client = lua_clients(full_stack)
    client_id = client.wait("connected")[0]["data"]["client_id"]

    publisher.job_created("job-1", job_type="export", name="Export 3 photos", total=3)
    publisher.job_progress("job-1", 40, stage="processing", message="Applying settings")
    publisher.photo_imported("photo-9", path="/photos/a.dng", job_id="job-1")
    publisher.system_status({"cpu_usage": 45.5, "gpu_temp": 62})
    publisher.session_created("session-1", name="not subscribed")  # channel "sessions": not for this client
    publisher.send_to_client(client_id, {"type": "custom_message", "data": "hello", "n": 2})
    publisher.job_completed("job-1", result={"exported": 3})

    client.wait("listener", type_="job_completed")
    handled = client.of("handler", "job_created")
    assert len(handled) == 1
    assert handled[0]["data"]["job_id"] == "job-1" and handled[0]["data"]["total"] == 3
    created = client.of("listener", "job_created")[0]["data"]
    assert (created["job_type"], created["name"]) == ("export", "Export 3 photos")
    progress = client.of("listener", "job_progress")[0]["data"]
    assert (progress["job_id"], progress["progress"], progress["stage"], progress["message"]) == (
        "job-1", 40, "processing", "Applying settings")
    assert client.of("listener", "photo_imported")[0]["data"]["path"] == "/photos/a.dng"
    assert client.of("listener", "system_status")[0]["data"]["status"] == {"cpu_usage": 45.5, "gpu_temp": 62}
    custom = client.of("handler", "custom_message")[0]["data"]
    assert (custom["data"], custom["n"]) == ("hello", 2)
    assert client.of("listener", "job_completed")[0]["data"]["result"] == {"exported": 3}
    assert client.of("message", "session_created") == []
    # each message once, in the order published, numbered without gaps
    seqs = [e["data"]["seq"] for e in client.of("message")]
    assert seqs == list(range(1, len(seqs) + 1))
    # logging: one line per state change, none per poll
    assert len([line for line in client.log_lines() if "connection: " in line]) == 2


def test_client_sends_reach_a_python_listener_without_waiting_for_the_poll(full_stack, listener, lua_clients):
    client = lua_clients(full_stack)
    client_id = client.wait("connected")[0]["data"]["client_id"]
    client.wait("message", type_="connection_established")

    # Sent 0.5 s after the command arrives, while the client's next poll is parked (wait=25).
    client.command(full_stack, "send_job_progress", delay=0.5, job_id="job123", stage="processing",
                   progress=50, message="Applying settings")
    event = receive_until(listener, client_id, "job_progress")
    assert (event.client_type, event.client_name) == ("lightroom", "Lightroom Classic Plugin")
    assert event.message == {"type": "job_progress", "job_id": "job123", "stage": "processing",
                             "progress": 50, "message": "Applying settings"}
    sent = client.wait("sent")[0]
    assert sent["ok"] is True and sent["response"]["type"] == "ack"
    assert sent["seconds"] < 2.0, sent

    client.command(full_stack, "send_job_complete", job_id="job123", success=True, result={})
    event = receive_until(listener, client_id, "job_complete")
    assert event.message["success"] is True
    assert event.message["result"] == {}  # an empty Lua table sent as an object, not []

    client.command(full_stack, "send_error", error_type="processing_error", message="Failed to apply settings",
                   details={"photo_id": "photo123"})
    event = receive_until(listener, client_id, "error")
    assert event.message["error_type"] == "processing_error"
    assert event.message["message"] == "Failed to apply settings"
    assert event.message["details"] == {"photo_id": "photo123"}

    client.command(full_stack, "send", message={"type": "custom_event", "data": "some data", "n": 1})
    event = receive_until(listener, client_id, "custom_event")
    assert event.message == {"type": "custom_event", "data": "some data", "n": 1}


def test_a_failing_listener_does_not_stop_delivery(full_stack, publisher, lua_clients):
    client = lua_clients(full_stack, failing_listener=True)
    client.wait("connected")
    for i in range(5):
        publisher.job_progress("job-f", i * 10, stage="step")
    client.wait("listener", type_="job_progress", count=5)
    publisher.job_completed("job-f")
    client.wait("listener", type_="job_completed")
    assert [e["data"]["progress"] for e in client.of("listener", "job_progress")] == [0, 10, 20, 30, 40]
    failures = [line for line in client.log_lines() if "listener for job_progress failed" in line]
    assert len(failures) == 5
    assert "a failing listener for job_progress" in failures[0]
