"""Helpers for the security tests: raw HTTP over a socket, the route table, hub counters."""

import json
import socket
import ssl

# Every HTTP route of the gateway with a harmless request for it: (method, path, body).
ROUTES = [
    ("POST", "/ws/handshake", {"client_type": "probe", "protocol_version": "1.0"}),
    ("GET", "/ws/poll?client_id=nobody", None),
    ("POST", "/ws/send", {"client_id": "nobody", "message": {"type": "ping"}}),
    ("POST", "/ws/disconnect", {"client_id": "nobody"}),
    ("GET", "/ws/clients", None),
    ("GET", "/ws/status", None),
    ("POST", "/ws/broadcast", {"message": {"type": "probe"}}),
    ("POST", "/ws/send/nobody", {"message": {"type": "probe"}}),
    ("POST", "/ws/send_to_type/probe", {"message": {"type": "probe"}}),
    ("POST", "/ws/notify/job_progress", {"job_id": "j", "progress": 1}),
    ("POST", "/ws/cleanup", {"timeout_minutes": 60}),
    ("GET", "/ws/openapi.json", None),
]

OPERATOR_ROUTES = [r for r in ROUTES if r[1].split("?")[0] not in (
    "/ws/handshake", "/ws/poll", "/ws/send", "/ws/disconnect", "/ws/openapi.json")]


class RawResponse:
    """Status, lower-case headers and body of one raw HTTP exchange."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return f"<RawResponse {self.status} {self.body[:200]!r}>"


def raw_exchange(port, data, timeout=10.0, tls_context=None):
    """Send ``data`` exactly as given and read one response (the server closes or sends Content-Length)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if tls_context is not None:
        sock = tls_context.wrap_socket(sock, server_hostname="localhost")
    try:
        sock.sendall(data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "-1"))
        while length >= 0 and len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return RawResponse(status, headers, body)
    finally:
        sock.close()


def raw_request(port, method, target, headers, body=None, **kw):
    """Build a request with exactly ``headers`` (a list of (name, value); no Host unless given)."""
    lines = [f"{method} {target} HTTP/1.1"]
    data = b""
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        lines.append(f"Content-Length: {len(data)}")
    lines += [f"{name}: {value}" for name, value in headers]
    lines.append("Connection: close")
    return raw_exchange(port, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data, **kw)


def counters(stack, headers=None):
    """What state changes would show in /ws/status: clients, channels, queued and published counts."""
    status = stack.get("/ws/status", headers=headers).json["status"]
    return {
        "clients": status["clients"],
        "queued": status["queued_messages"],
        "channels": status["channels"],
        "messages": {k: status["messages"][k] for k in ("published", "delivered", "client_messages")},
    }


def tls_client_context(cert_path):
    """An SSL context that trusts exactly ``cert_path``."""
    ctx = ssl.create_default_context(cafile=str(cert_path))
    return ctx
