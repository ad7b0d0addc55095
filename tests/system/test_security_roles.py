"""Client and operator roles, the admin token, per-client secrets, and TLS for remote use."""

import datetime
import ipaddress
import json
import ssl
import subprocess
import uuid

import pytest

from tests.stack import Stack, wait_for
from tests.system.security_support import OPERATOR_ROUTES, raw_request, tls_client_context

TOKEN = "t0ken-for-tests-" + uuid.uuid4().hex


def _wait_exit(proc, timeout=20):
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


@pytest.mark.parametrize("env,needle", [
    ({"BRIDGE_HTTP_HOST": "0.0.0.0"}, "BRIDGE_ADMIN_TOKEN"),
    ({"BRIDGE_HTTP_HOST": "0.0.0.0", "BRIDGE_ADMIN_TOKEN": "short"}, "BRIDGE_ADMIN_TOKEN"),
    ({"BRIDGE_TLS_CERT": "/nonexistent.pem"}, "BRIDGE_TLS_KEY"),
    ({"BRIDGE_HUB_RPC": "tcp://0.0.0.0:5999"}, "BRIDGE_CURVE_DIR"),
])
def test_gateway_refuses_to_start_exposed_without_protection(tmp_path, env, needle):
    stack = Stack(tmp_path, env).start("gateway")
    try:
        code = _wait_exit(stack.procs["gateway"])
        assert code not in (None, 0), stack.output("gateway")
        assert needle in stack.output("gateway")
    finally:
        stack.stop_all()


@pytest.fixture(scope="module")
def remote(tmp_path_factory):
    """A gateway bound off loopback (0.0.0.0), reached over 127.0.0.1 only."""
    stack = Stack(tmp_path_factory.mktemp("remote"), {"BRIDGE_HTTP_HOST": "0.0.0.0", "BRIDGE_ADMIN_TOKEN": TOKEN})
    stack.start("hub", "gateway").wait_ready()
    yield stack
    stack.stop_all()


def _raw(stack, method, path, body=None, auth=None, extra=()):
    headers = [("Host", f"127.0.0.1:{stack.http_port}")] + list(extra)
    if body is not None:
        headers.append(("Content-Type", "application/json"))
    if auth is not None:
        headers.append(("Authorization", auth))
    return raw_request(stack.http_port, method, path, headers, body)


@pytest.mark.parametrize("method,path,body", OPERATOR_ROUTES, ids=[p for _, p, _ in OPERATOR_ROUTES])
def test_operator_routes_need_the_bearer_token_off_loopback(remote, method, path, body):
    before = remote.get("/ws/status").json["status"]["messages"]["published"]
    for auth in (None, "", f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, "Bearer"):
        r = _raw(remote, method, path, body, auth)
        assert r.status == 401, (auth, r)
        assert r.json["code"] == "unauthorized" and r.json["success"] is False
        assert r.headers.get("www-authenticate", "").startswith("Bearer")
    r = _raw(remote, method, path, body, f"Bearer {TOKEN}")
    assert r.status not in (401, 403, 421, 500), r
    r = _raw(remote, method, path, body, f"bearer   {TOKEN}")
    assert r.status not in (401, 403, 421, 500), r
    after = remote.get("/ws/status").json["status"]["messages"]["published"]
    assert after - before <= 2  # only the two authorized calls could publish


def _handshake(stack):
    r = _raw(stack, "POST", "/ws/handshake", {"client_type": "lightroom"})
    assert r.status == 200, r
    return r.json["client_id"], r.json["client_secret"]


def test_client_secret_is_required_off_loopback_and_wrong_looks_unknown(remote):
    cid, secret = _handshake(remote)
    assert uuid.UUID(cid).version == 4 and len(secret) >= 32
    other_cid, other_secret = _handshake(remote)
    remote.post("/ws/broadcast", {"message": {"type": "kept"}})

    unknown = _raw(remote, "GET", f"/ws/poll?client_id={uuid.uuid4()}")
    for headers in ([], [("X-Client-Secret", "wrong")], [("X-Client-Secret", other_secret)]):
        r = _raw(remote, "GET", f"/ws/poll?client_id={cid}", extra=headers)
        assert (r.status, r.json) == (unknown.status, unknown.json) == (404, r.json), r  # no oracle
    r = _raw(remote, "GET", f"/ws/poll?client_id={cid}&client_secret={other_secret}")
    assert r.status == 404
    for path, body in (("/ws/send", {"client_id": cid, "message": {"type": "ping"}}),
                       ("/ws/disconnect", {"client_id": cid})):
        assert _raw(remote, "POST", path, body).status == 404
        assert _raw(remote, "POST", path, dict(body, client_secret=other_secret)).status == 404

    r = _raw(remote, "GET", f"/ws/poll?client_id={cid}", extra=[("X-Client-Secret", secret)])
    assert r.status == 200 and [m["type"] for m in r.json["messages"]] == ["connection_established", "kept"]
    r = _raw(remote, "POST", "/ws/send", {"client_id": cid, "client_secret": secret, "message": {"type": "ping"}})
    assert r.status == 200 and r.json["response"]["type"] == "pong"
    r = _raw(remote, "POST", "/ws/disconnect", {"client_id": cid}, extra=[("X-Client-Secret", secret)])
    assert r.status == 200
    r = _raw(remote, "GET", f"/ws/poll?client_id={other_cid}", extra=[("X-Client-Secret", other_secret)])
    assert r.status == 200  # the other client was not touched by the failed attempts


def test_secrets_and_token_never_appear_in_logs(remote):
    cid, secret = _handshake(remote)
    _raw(remote, "GET", f"/ws/poll?client_id={cid}", extra=[("X-Client-Secret", "wrong-" + secret[:10])])
    _raw(remote, "GET", f"/ws/poll?client_id={cid}&client_secret={secret}")
    _raw(remote, "GET", "/ws/clients", auth=f"Bearer {TOKEN}x")
    clients = remote.get("/ws/clients").json["clients"]
    assert secret not in json.dumps(clients)
    wait_for(lambda: cid in remote.output("hub"), message="the hub to log the client")
    logs = [remote.output(name) for name in ("hub", "gateway")]
    logs += [p.read_text(errors="replace") for p in (remote.workdir / "logs").glob("*.log*")]
    for text in logs:
        assert secret not in text and secret[:10] not in text and TOKEN not in text


def test_a_token_on_loopback_protects_operator_routes_too(stack_factory):
    stack = stack_factory({"BRIDGE_ADMIN_TOKEN": TOKEN})
    assert _raw(stack, "GET", "/ws/clients").status == 401
    assert _raw(stack, "GET", "/ws/clients", auth=f"Bearer {TOKEN}").status == 200
    r = _raw(stack, "POST", "/ws/handshake", {})
    assert r.status == 200
    r = _raw(stack, "GET", f"/ws/poll?client_id={r.json['client_id']}")
    assert r.status == 200  # on loopback the client secret is optional unless BRIDGE_REQUIRE_CLIENT_SECRET


def test_loopback_can_require_client_secrets(stack_factory):
    stack = stack_factory({"BRIDGE_REQUIRE_CLIENT_SECRET": "1"})
    cid, secret = _handshake(stack)
    assert _raw(stack, "GET", f"/ws/poll?client_id={cid}").status == 404
    assert _raw(stack, "GET", f"/ws/poll?client_id={cid}", extra=[("X-Client-Secret", secret)]).status == 200


def _self_signed(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_with_gunicorn_certfile_and_keyfile(tmp_path):
    cert, key = _self_signed(tmp_path)
    stack = Stack(tmp_path / "stack", {"BRIDGE_HTTP_HOST": "0.0.0.0", "BRIDGE_ADMIN_TOKEN": TOKEN,
                                       "BRIDGE_TLS_CERT": str(cert), "BRIDGE_TLS_KEY": str(key)})
    stack.start("hub", "gateway")
    try:
        ctx = tls_client_context(cert)
        port = stack.http_port
        status = [("Host", f"localhost:{port}"), ("Authorization", f"Bearer {TOKEN}")]

        def ready():
            assert stack.procs["gateway"].poll() is None, stack.output("gateway")
            return raw_request(port, "GET", "/ws/status", status, tls_context=ctx, timeout=3).status == 200
        wait_for(ready, timeout=30, interval=0.1, message="the gateway over HTTPS")
        r = raw_request(port, "POST", "/ws/handshake", [("Host", f"localhost:{port}"),
                        ("Content-Type", "application/json")], {"client_type": "remote"}, tls_context=ctx)
        assert r.status == 200 and r.json["client_secret"]
        r = raw_request(port, "GET", "/ws/status", [("Host", f"localhost:{port}")], tls_context=ctx)
        assert r.status == 401
        # Plain HTTP to the TLS port gets no answer from the API.
        try:
            plain = raw_request(port, "GET", "/ws/status", status, timeout=3)
            assert plain.status != 200
        except (ConnectionError, OSError):
            pass
        # A client that does not trust the certificate refuses the connection.
        with pytest.raises(ssl.SSLError):
            raw_request(port, "GET", "/ws/status", status, tls_context=ssl.create_default_context(), timeout=3)
    finally:
        stack.stop_all()
