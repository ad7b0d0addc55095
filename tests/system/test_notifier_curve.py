"""CURVE on the notifier's sockets, with the real hub, notifier and gateway.

With BRIDGE_CURVE_DIR the notifier's ingest (bound here on 0.0.0.0, which it
refuses without keys) and its XPUB are CURVE servers, the hub's SUB and
client-events PUB speak CURVE, and the backend library connects with keys
from the folder or given one by one. A backend with no keys or the wrong
ones gets nothing through, and the notifier keeps serving the others.
"""

import shutil
import socket
import subprocess

import pytest
import zmq
from zmq.utils.monitor import recv_monitor_message

from services import curve, protocol
from services.notifier.client import Listener, Publisher
from tests.stack import Stack, free_port, wait_for
from tests.system.notifier_support import collect, handshake, has, wait_for_notifier

HANDSHAKE_FAILED = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                    | zmq.EVENT_HANDSHAKE_FAILED_AUTH)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    root = curve.generate(tmp_path_factory.mktemp("curve") / "keys")
    curve.generate_client(root, "remote")  # a backend's own pair, authorized before the services start
    return root


@pytest.fixture(scope="module")
def stack(tmp_path_factory, keys):
    stack = Stack(tmp_path_factory.mktemp("curve-stack"), {"BRIDGE_CURVE_DIR": str(keys), "BRIDGE_STATUS_INTERVAL": "0"})
    port = stack.env["BRIDGE_EVENTS_IN"].rsplit(":", 1)[1]
    stack.start("hub", "gateway")
    loopback_in = stack.env["BRIDGE_EVENTS_IN"]
    stack.env["BRIDGE_EVENTS_IN"] = f"tcp://0.0.0.0:{port}"  # off loopback: allowed only with the keys
    stack.start("notifier")
    stack.env["BRIDGE_EVENTS_IN"] = loopback_in  # backends connect over 127.0.0.1
    try:
        stack.wait_ready()
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture(scope="module")
def publisher(stack):
    """A backend that takes everything (endpoint and keys) from the bridge's environment."""
    with Publisher(environ=stack.env, timeout=2) as pub:
        wait_for_notifier(stack, pub)
        yield pub


def _stranger_pair():
    public, secret = zmq.curve_keypair()
    return public.decode(), secret.decode()


def test_a_backend_with_the_key_folder_reaches_a_polling_client(stack, publisher):
    client = handshake(stack, channels=["jobs"])
    assert publisher.job_progress("curve-1", 40, stage="export") is True
    got = collect(stack, client, has("job_id", "curve-1"))
    assert [m["progress"] for m in got if m.get("job_id") == "curve-1"] == [40]


def test_a_remote_backend_with_only_the_public_server_key_and_its_own_pair(stack, keys, tmp_path):
    remote = tmp_path / "remote"  # what the other machine holds: no server secret
    remote.mkdir()
    shutil.copy(keys / "server.key", remote / "server.key")
    shutil.copy(keys / "remote.key_secret", remote / "client.key_secret")
    client = handshake(stack, channels=["photos"])
    endpoint = stack.env["BRIDGE_NOTIFIER_RPC"]
    with Publisher(endpoint, timeout=2, environ={}, server_key=str(remote / "server.key"),
                   client_key=remote / "client.key_secret") as explicit, \
            Publisher(endpoint, timeout=2, environ={}, curve_dir=remote) as folder:
        assert explicit.photo_imported("p-explicit") is True
        assert folder.photo_imported("p-folder") is True
    got = collect(stack, client, lambda got: {"p-explicit", "p-folder"} <= {m.get("photo_id") for m in got})
    assert sorted(m["photo_id"] for m in got if m["type"] == "photo_imported") == ["p-explicit", "p-folder"]


def test_wrong_or_missing_keys_deliver_nothing_and_the_notifier_keeps_serving(stack, keys, publisher):
    client = handshake(stack, channels=["jobs"])
    endpoint = stack.env["BRIDGE_EVENTS_IN"]
    loaded = curve.load(keys)
    rpc = stack.env["BRIDGE_NOTIFIER_RPC"]
    library = [
        Publisher(rpc, timeout=0.5, environ={}),  # no keys at all
        Publisher(rpc, timeout=0.5, environ={}, server_key=loaded.server_public.decode(),
                  client_key=_stranger_pair()),  # a pair not in authorized/
        Publisher(rpc, timeout=0.5, environ={}, server_key=zmq.curve_keypair()[0],
                  client_key=keys / "client.key_secret"),  # does not know the notifier's key
    ]
    for pub in library:  # the library notices: no connection, so False within its timeout
        assert pub.broadcast({"type": "intruder", "by": "library"}, channel="jobs") is False
        assert pub.dropped == 1
        pub.close(linger=0)

    # Raw sockets that queue regardless (no IMMEDIATE): only the notifier's refusal stops them.
    ctx = zmq.Context()
    raw = []
    try:
        for pair in (None, _stranger_pair()):
            sock = ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 0)
            if pair is not None:
                sock.curve_serverkey = loaded.server_public
                sock.curve_publickey, sock.curve_secretkey = (k.encode() for k in pair)
            monitor = sock.get_monitor_socket(HANDSHAKE_FAILED | zmq.EVENT_HANDSHAKE_SUCCEEDED)
            sock.connect(endpoint)
            event = {"target": "channel", "to": "jobs", "message": {"type": "intruder", "by": "raw"}}
            sock.send_multipart(protocol.encode_ingest(event))
            raw.append((sock, monitor))
        for sock, monitor in raw:  # each connection was tried and refused at the handshake
            assert monitor.poll(10000), "no handshake outcome"
            assert recv_monitor_message(monitor)["event"] & HANDSHAKE_FAILED

        assert publisher.job_started("after-intruders") is True
        got = collect(stack, client, has("job_id", "after-intruders"))
        assert [m for m in got if m["type"] == "intruder"] == []
        assert stack.procs["notifier"].poll() is None
    finally:
        for sock, monitor in raw:
            sock.disable_monitor()
            monitor.close()
            sock.close()
        ctx.term()


def test_a_listener_with_the_keys_hears_a_plugin_message_and_others_hear_nothing(stack, keys):
    endpoint = stack.env["BRIDGE_CLIENT_EVENTS"]
    outsiders = [
        Listener(types=["job_progress"], endpoint=endpoint, environ={}),
        Listener(types=["job_progress"], endpoint=endpoint, environ={},
                 server_key=keys / "server.key", client_key=_stranger_pair()),
    ]
    listener = Listener(types=["job_progress"], environ=stack.env)
    client = handshake(stack, "lightroom")
    sent = iter(range(1, 10_000))

    def send():
        job_id = f"lr-{next(sent)}"
        r = stack.post("/ws/send", {"client_id": client, "message": {"type": "job_progress", "job_id": job_id, "progress": 50}})
        assert r.status == 200, r
        return job_id

    def heard():  # the subscription reaches the hub a moment after the CURVE handshake
        send()
        event = listener.receive(timeout=0.2)
        return event is not None and event.client_id == client

    try:
        wait_for(heard, timeout=20, interval=0, message="the listener to hear the plugin")
        later = [send() for _ in range(3)]
        events = []
        while not events or events[-1].message["job_id"] != later[-1]:
            event = listener.receive(timeout=5)
            assert event is not None, f"heard only {[e.message['job_id'] for e in events]}"
            events.append(event)
        assert [e.message["job_id"] for e in events][-3:] == later
        assert {(e.client_id, e.client_type) for e in events} == {(client, "lightroom")}
        for outsider in outsiders:
            assert outsider.receive(timeout=0.3) is None
    finally:
        for each in outsiders + [listener]:
            each.close()


@pytest.mark.parametrize("key", ["BRIDGE_EVENTS_IN", "BRIDGE_EVENTS_OUT"])
def test_the_notifier_refuses_a_bind_off_loopback_without_keys(tmp_path, key):
    port = free_port()
    stack = Stack(tmp_path, {key: f"tcp://0.0.0.0:{port}"}).start("notifier")
    try:
        try:
            code = stack.procs["notifier"].wait(20)
        except subprocess.TimeoutExpired:
            code = None
        out = stack.output("notifier")
        assert code == 2, out
        assert key in out and "BRIDGE_CURVE_DIR" in out
        with socket.socket() as s:  # it never listened
            assert s.connect_ex(("127.0.0.1", port)) != 0
    finally:
        stack.stop_all()
