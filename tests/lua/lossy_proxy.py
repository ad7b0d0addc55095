"""An HTTP proxy in front of the gateway that loses chosen poll answers, for the Lua client's tests.

Each client connection carries one request (the LrHttp shim sends
``Connection: close``); its Host header is rewritten to the gateway's
address. The proxy forwards it and reads the gateway's whole answer; when
``lose(request_line, answer)`` says so, it withholds the answer until the
client gives up (its LrHttp timeout) and closes the connection: the answer
was produced by the bridge but never reached the client. While ``blocked``
is set, a new request is read and its connection closed without forwarding
it (the client sees no answer, as when the network is down); connections
already forwarded are served as usual.
"""

import re
import socket
import threading


def _read_request(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    return head + b"\r\n\r\n" + body


class LossyProxy:
    """Listens on a free loopback port and forwards to ``target_port``; ``lost`` counts withheld answers."""

    def __init__(self, target_port, lose=None, hold_limit=10.0):
        self.target_port = target_port
        self.lose = lose or (lambda request_line, answer: False)
        self.blocked = False
        self.refused = 0
        self.hold_limit = hold_limit
        self.lost = []
        self._lock = threading.Lock()
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="lossy-proxy", daemon=True)

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stopped.set()
        self._thread.join(5)
        self._server.close()

    def _accept(self):
        while not self._stopped.is_set():
            try:
                conn, _ = self._server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), name="lossy-proxy-conn", daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(self.hold_limit + 30)
        try:
            request = _read_request(conn)
            if request is None:
                return
            if self.blocked:
                with self._lock:
                    self.refused += 1
                return
            # the gateway refuses a Host that names another port (DNS-rebinding guard)
            request = re.sub(rb"(?im)^Host:[^\r\n]*", f"Host: 127.0.0.1:{self.target_port}".encode(), request, count=1)
            with socket.create_connection(("127.0.0.1", self.target_port), timeout=60) as upstream:
                upstream.sendall(request)
                answer = b""
                while True:
                    chunk = upstream.recv(65536)
                    if not chunk:
                        break
                    answer += chunk
            request_line = request.split(b"\r\n", 1)[0].decode("latin-1")
            if self.lose(request_line, answer):
                with self._lock:
                    self.lost.append((request_line, answer))
                # hold the answer until the client times out and closes, then drop it
                conn.settimeout(self.hold_limit)
                while conn.recv(65536):
                    pass
                return
            conn.sendall(answer)
        except OSError:
            pass
        finally:
            conn.close()
