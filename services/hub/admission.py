"""Who may act on a session, and how fast: client secrets and token buckets.

The hub owns sessions, so it checks every client secret it is given (an
unknown id and a wrong secret get the same ``unknown_client``: no oracle for
guessing ids) and counts handshakes per peer and sends per client. Whether a
secret must be given is not decided here: the gateway, where a request
enters, refuses one without it when its BRIDGE_REQUIRE_CLIENT_SECRET is on
(services/gateway/auth.py), so one rule holds whatever environment the hub
runs with. Time is the
injected monotonic clock, so a wall-clock jump changes nothing here.
"""

import hmac
import secrets

from services.protocol import ProtocolError

MAX_PEERS = 10000  # handshake buckets remembered at once (full ones are forgotten first)


def new_secret():
    """A client secret: 32 random bytes, URL-safe."""
    return secrets.token_urlsafe(32)


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; ``rate`` 0 means unlimited."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate, burst, now):
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = now

    def take(self, now):
        """Spend one token; returns 0 when allowed, else the seconds until one is available."""
        if self.rate <= 0:
            return 0.0
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate

    def full(self, now):
        return self.tokens + (now - self.stamp) * self.rate >= self.burst


def _limited(what, wait):
    return ProtocolError("rate_limited", f"too many {what}; retry in {wait:.1f} s", retry_after=round(wait, 3))


class Admission:
    """Client secrets and rate limits, checked before a handler touches any state."""

    def __init__(self, hub):
        self.hub = hub
        self.peers = {}  # peer address -> TokenBucket of handshakes

    @property
    def config(self):
        return self.hub.config

    def clock(self):
        return self.hub.clock()

    def handshake(self, peer):
        """Count one handshake from ``peer``; raises ``rate_limited`` past the configured rate."""
        rate = self.config.handshake_rate
        if rate <= 0:
            return
        now = self.clock()
        bucket = self.peers.get(peer)
        if bucket is None:
            if len(self.peers) >= MAX_PEERS:
                self.peers = {p: b for p, b in self.peers.items() if not b.full(now)}
            bucket = self.peers[peer] = TokenBucket(rate, self.config.handshake_burst, now)
        wait = bucket.take(now)
        if wait:
            raise _limited("handshakes from this address", wait)

    def new_session(self, session):
        """Give a new session its secret and its send bucket."""
        session.secret = new_secret()
        session.send_bucket = TokenBucket(self.config.send_rate, self.config.send_burst, self.clock())

    def client(self, client_id, secret):
        """The session ``client_id`` names, if ``secret`` (when given) proves ownership.

        Raises ``unknown_client`` for an unknown id and for a wrong secret alike.
        """
        session = self.hub.sessions.get(client_id)
        if session is not None and secret is not None:
            if not hmac.compare_digest(secret.encode(), session.secret.encode()):
                session = None
        if session is None:
            raise ProtocolError("unknown_client", "unknown client_id", "client_id")
        return session

    def send(self, session):
        """Count one message sent by ``session``; raises ``rate_limited`` past the configured rate."""
        wait = session.send_bucket.take(self.clock())
        if wait:
            raise _limited("messages from this client", wait)
