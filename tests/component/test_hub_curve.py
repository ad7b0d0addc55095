"""ZeroMQ off loopback: the hub refuses to bind without CURVE keys; with them, only authorized clients get in."""

import socket
import subprocess

import pytest
import zmq
import zmq.auth

from services import curve, protocol
from tests.stack import Stack, free_port, wait_for


def _exit_code(proc, timeout=20):
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


@pytest.mark.parametrize("key", ["BRIDGE_HUB_RPC", "BRIDGE_CLIENT_EVENTS"])
def test_hub_refuses_a_bind_off_loopback_without_curve_keys(tmp_path, key):
    port = free_port()
    stack = Stack(tmp_path, {key: f"tcp://0.0.0.0:{port}"}).start("hub")
    try:
        assert _exit_code(stack.procs["hub"]) == 2, stack.output("hub")
        assert key in stack.output("hub") and "BRIDGE_CURVE_DIR" in stack.output("hub")
        with socket.socket() as s:  # it never listened
            assert s.connect_ex(("127.0.0.1", port)) != 0
    finally:
        stack.stop_all()


@pytest.fixture
def keys(tmp_path):
    return curve.generate(tmp_path / "curve")


@pytest.fixture
def curve_hub(tmp_path, keys):
    stack = Stack(tmp_path / "stack", {"BRIDGE_CURVE_DIR": str(keys)}).start("hub")
    wait_for(lambda: "hub serving" in stack.output("hub"), message="the hub to start")
    yield stack
    stack.stop_all()


def _dealer(endpoint, server_public=None, pair=None):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 1500)
    if server_public is not None:
        sock.curve_serverkey = server_public
        sock.curve_publickey, sock.curve_secretkey = pair
    sock.connect(endpoint)
    return sock


def _status(sock, req_id):
    sock.send_multipart(protocol.encode_request(protocol.OP_STATUS, req_id))
    try:
        return protocol.decode_reply(sock.recv_multipart())
    except zmq.Again:
        return None


def test_only_authorized_curve_clients_are_answered(curve_hub, keys):
    loaded = curve.load(keys)
    endpoint = curve_hub.env["BRIDGE_HUB_RPC"]
    good = _dealer(endpoint, loaded.server_public, (loaded.client_public, loaded.client_secret))
    plain = _dealer(endpoint)
    stranger = _dealer(endpoint, loaded.server_public, zmq.curve_keypair())
    wrong_server = _dealer(endpoint, zmq.curve_keypair()[0], (loaded.client_public, loaded.client_secret))
    try:
        rep = _status(good, 1)
        assert rep is not None and rep["ok"]
        assert _status(plain, 2) is None  # no CURVE handshake: nothing gets through
        assert _status(stranger, 3) is None  # keys not in authorized/
        assert _status(wrong_server, 4) is None  # does not know the hub's key
        assert _status(good, 5)["ok"]
    finally:
        for sock in (good, plain, stranger, wrong_server):
            sock.close()


def test_the_gateway_reaches_a_curve_hub_with_the_same_folder(tmp_path, keys):
    stack = Stack(tmp_path / "full", {"BRIDGE_CURVE_DIR": str(keys)}).start("hub", "gateway").wait_ready()
    try:
        cid = stack.handshake("lightroom", ["jobs"])
        assert stack.post("/ws/broadcast", {"message": {"type": "x"}, "channel": "jobs"}).json["delivered"] == 1
        assert [m["type"] for m in stack.poll(cid).json["messages"]] == ["x"]
    finally:
        stack.stop_all()


def test_a_gateway_without_the_keys_gets_503_not_a_hang(tmp_path, keys):
    stack = Stack(tmp_path / "nokeys", {"BRIDGE_HUB_TIMEOUT": "1"}).start("gateway")
    hub = Stack(tmp_path / "hub", {"BRIDGE_CURVE_DIR": str(keys)})
    hub.env.update({k: v for k, v in stack.env.items() if k.startswith("BRIDGE_") and k != "BRIDGE_LOG_DIR"})
    hub.env["BRIDGE_CURVE_DIR"] = str(keys)
    hub.start("hub")
    try:
        wait_for(lambda: stack.get("/ws/status", timeout=5).status == 503, timeout=20, message="the gateway")
        r = stack.get("/ws/status", timeout=5)
        assert r.status == 503 and r.json["code"] == "hub_unavailable"
    finally:
        stack.stop_all()
        hub.stop_all()


def test_key_generation_command(tmp_path):
    import sys
    out = subprocess.run([sys.executable, "-m", "services.curve", str(tmp_path / "k")], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    loaded = curve.load(tmp_path / "k")
    assert len(loaded.server_public) == 40 and (tmp_path / "k" / "authorized" / "client.key").exists()
    assert oct((tmp_path / "k" / "server.key_secret").stat().st_mode & 0o777) == "0o600"
