"""The soak's publishers: a backend over ZeroMQ (the bridge's own library) and two over HTTP.

Each runs at a steady offered rate: the n-th publication is due at
``start + n / rate``; one that comes late (a publish that blocked) is not
made up with a burst. Every payload carries ``pub`` (the publisher's id)
and ``n`` (its number, from 1), and every attempt is recorded as a
``Publication``: accepted (HTTP 200, a ZeroMQ send that returned True) or
refused with the reason the publisher saw.
"""

import http.client
import itertools
import json
import threading
import time

from benchmarks.soak.checker import Publication
from services.notifier.client import Publisher

HTTP_TIMEOUT = 5.0


class Paced(threading.Thread):
    """Base: the steady schedule, the numbering and the record of attempts."""

    def __init__(self, pub, rate):
        super().__init__(name=f"publisher-{pub}", daemon=True)
        self.pub = pub
        self.rate = rate
        self.numbers = itertools.count(1)
        self.publications = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def message(self, n, pad=0):
        message = {"type": "soak", "pub": self.pub, "n": n}
        if pad:
            message["pad"] = "x" * pad
        return message

    def attempt(self, target, send, pad=0):
        """Publish one numbered payload with ``send(message)`` → ``(accepted, reason)``; record it."""
        n = next(self.numbers)
        t = time.monotonic()
        try:
            accepted, reason = send(self.message(n, pad))
        except Exception as ex:  # the publisher saw it fail: refused, with what it saw
            accepted, reason = False, type(ex).__name__
        with self.lock:
            self.publications.append(Publication(self.pub, n, t, target, accepted, reason))
        return accepted

    def run(self):
        due = time.monotonic()
        while not self.stopping.is_set():
            self.once()
            due = max(due + 1.0 / self.rate, time.monotonic())
            self.stopping.wait(max(0.0, due - time.monotonic()))

    def once(self):
        raise NotImplementedError

    def stop(self):
        self.stopping.set()

    def records(self):
        with self.lock:
            return list(self.publications)


class ZmqPublisher(Paced):
    """A backend service: ``Publisher.broadcast`` to one channel through the notifier.

    ``confirm=True``: a call returns True only once the notifier acknowledged
    that very event, so "accepted" means the notifier took it, and a refusal
    names the event the publisher knows it lost (without it, the library
    reports a lost acknowledgement on a later call).
    """

    def __init__(self, pub, rate, endpoint, channel, timeout=1.0):
        super().__init__(pub, rate)
        self.channel = channel
        self.publisher = Publisher(endpoint=endpoint, timeout=timeout, environ={}, confirm=True)

    def once(self):
        self.attempt(("channel", self.channel), self.send)

    def send(self, message):
        ok = self.publisher.broadcast(message, self.channel)
        return ok, "" if ok else "send failed"

    def close(self):
        self.publisher.close(linger=0)


class HttpPublisher(Paced):
    """``POST`` over one keep-alive connection (a new one after any failure)."""

    def __init__(self, pub, rate, port):
        super().__init__(pub, rate)
        self.port = port
        self.conn = None

    def post(self, path, body):
        """``(accepted, reason)`` for one POST: 200 is accepted, anything else refused."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HTTP_TIMEOUT)
        try:
            self.conn.request("POST", path, body=json.dumps(body).encode(),
                              headers={"Content-Type": "application/json"})
            resp = self.conn.getresponse()
            resp.read()
        except (OSError, http.client.HTTPException) as ex:
            self.conn.close()
            self.conn = None
            return False, "timeout" if isinstance(ex, TimeoutError) else "connection error"
        if resp.status != 200:
            self.conn.close()
            self.conn = None
            return False, f"HTTP {resp.status}"
        return True, ""

    def close(self):
        if self.conn is not None:
            self.conn.close()


class BroadcastPublisher(HttpPublisher):
    """``POST /ws/broadcast`` to one channel."""

    def __init__(self, pub, rate, port, channel):
        super().__init__(pub, rate, port)
        self.channel = channel

    def once(self):
        self.attempt(("channel", self.channel),
                     lambda m: self.post("/ws/broadcast", {"message": m, "channel": self.channel}))

    def burst(self, count, pad, seconds):
        """Up to ``count`` payloads of about ``pad`` bytes, back to back, for at most ``seconds`` (the backlog fault).

        Returns ``(accepted, attempted)``.
        """
        deadline = time.monotonic() + seconds
        accepted = attempted = 0
        while attempted < count and time.monotonic() < deadline:
            attempted += 1
            accepted += self.attempt(("channel", self.channel),
                                     lambda m: self.post("/ws/broadcast", {"message": m, "channel": self.channel}), pad)
        return accepted, attempted


class DirectPublisher(HttpPublisher):
    """``POST /ws/send/<client_id>`` to each client in turn, addressed by its current session."""

    def __init__(self, pub, rate, port, clients):
        super().__init__(pub, rate, port)
        self.clients = clients
        self.turn = itertools.cycle(clients)

    def once(self):
        client = next(self.turn)
        client_id = client.client_id
        if not client_id:
            self.attempt(("client", client.log.name), lambda m: (False, "no session"))
            return
        self.attempt(("client", client.log.name), lambda m: self.post(f"/ws/send/{client_id}", {"message": m}))
