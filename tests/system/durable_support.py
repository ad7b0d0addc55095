"""Helpers for the durability tests: a fast publisher on the hub's own socket, a polling client, a checker.

The publisher speaks the hub's request protocol over a real DEALER, as a
gateway does, with many requests in flight, so ten thousand publishes take
a second rather than ten thousand HTTP round trips.
"""

import http.client
import json
import time

import zmq

from services import protocol


class Publisher:
    """Pipelined ``publish`` requests to the hub; ``acked`` holds the keys the hub confirmed."""

    def __init__(self, endpoint, window=200):
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.window = window
        self.pending = {}  # request id -> key
        self.acked = []
        self.next_id = 1

    def send(self, key, message, channel):
        """Queue one publish of ``message`` to ``channel``; ``key`` names it in ``acked``."""
        req_id = self.next_id
        self.next_id += 1
        self.pending[req_id] = key
        fields = protocol.publish_event(protocol.TARGET_CHANNEL, message, channel)
        self.sock.send_multipart(protocol.encode_request(protocol.OP_PUBLISH, req_id, **fields))
        while len(self.pending) >= self.window:
            if not self.receive(2000):
                return False
        return True

    def receive(self, timeout_ms):
        """Read the replies that arrive within ``timeout_ms``; False when none did."""
        got = False
        while self.sock.poll(timeout_ms):
            rep = protocol.decode_reply(self.sock.recv_multipart())
            key = self.pending.pop(rep["id"], None)
            if key is not None and rep["ok"]:
                self.acked.append(key)
            got = True
            timeout_ms = 0
        return got

    def drain(self, deadline):
        """Wait (until ``deadline``, monotonic) for every outstanding reply."""
        while self.pending and time.monotonic() < deadline:
            self.receive(200)
        return not self.pending

    def forget_pending(self):
        """Give up on requests the killed hub never answered (they may or may not have been applied)."""
        lost = len(self.pending)
        self.pending.clear()
        return lost

    def close(self):
        self.sock.close()


class PollingClient:
    """One HTTP client polling with ``ack``, as the plugin does; remembers every message in order."""

    def __init__(self, port, client_id):
        self.port = port
        self.client_id = client_id
        self.received = []
        self.last_seq = 0
        self.errors = 0
        self.conn = None

    def poll_once(self, wait=1.0):
        """One ``GET /ws/poll``; returns the messages, or None on an HTTP/connection error."""
        path = f"/ws/poll?client_id={self.client_id}&wait={wait}&ack={self.last_seq}"
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=wait + 15)
            self.conn.request("GET", path)
            resp = self.conn.getresponse()
            body = json.loads(resp.read())
        except (OSError, http.client.HTTPException, ValueError):
            self.errors += 1
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            return None
        if resp.status != 200:
            self.errors += 1
            return None
        messages = body["messages"]
        self.received.extend(messages)
        if messages:
            self.last_seq = messages[-1]["seq"]
        return messages

    def close(self):
        if self.conn is not None:
            self.conn.close()


def check_delivery(received, acked, key="n"):
    """Lost, duplicated and reordered counts for one client's messages against the acked keys."""
    seqs = [m["seq"] for m in received]
    reordered = sum(1 for a, b in zip(seqs, seqs[1:]) if b <= a)
    keys = [m[key] for m in received if key in m]
    seen = set()
    duplicated = 0
    for k in keys:
        if k in seen:
            duplicated += 1
        seen.add(k)
    lost = len(set(acked) - seen)
    return {"lost": lost, "duplicated": duplicated, "reordered": reordered}
