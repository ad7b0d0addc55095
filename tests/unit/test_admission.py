"""Client secrets, token buckets and wall-clock independence, by plain calls with injected clocks."""

import pytest

from services.hub.admission import TokenBucket
from services.hub.config import HubConfig
from services.hub.hub import Hub
from services.protocol import ProtocolError


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def make_hub(**config):
    mono, wall = Clock(1000.0), Clock(1_700_000_000.0)
    hub = Hub(HubConfig(**config), lambda *a: None, clock=mono, wallclock=wall)
    return hub, mono, wall


def test_token_bucket_refills_at_its_rate_up_to_its_burst():
    bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)
    assert bucket.take(0.5) == 0.0
    assert bucket.take(100.0) == 0.0 and bucket.tokens == pytest.approx(2.0)  # capped at the burst, minus one
    assert TokenBucket(rate=0, burst=1, now=0).take(0) == 0.0  # 0: unlimited


def test_secret_checked_whenever_given():
    """Whether one must be given is the gateway's rule (tests/system/test_security_split.py); the hub checks it."""
    hub, _, _ = make_hub()
    session = hub.create_session("x")
    assert len(session.secret) >= 32
    assert hub.admission.client(session.client_id, None) is session  # the gateway let it through without one
    assert hub.admission.client(session.client_id, session.secret) is session
    with pytest.raises(ProtocolError) as wrong:
        hub.admission.client(session.client_id, "nope")
    with pytest.raises(ProtocolError) as unknown:
        hub.admission.client("no-such-id", None)
    assert (wrong.value.code, wrong.value.reason) == (unknown.value.code, unknown.value.reason)


def test_handshake_rate_is_per_peer_and_says_when_to_retry():
    hub, mono, _ = make_hub(handshake_rate=1.0, handshake_burst=2)
    hub.admission.handshake("10.0.0.1")
    hub.admission.handshake("10.0.0.1")
    with pytest.raises(ProtocolError) as limited:
        hub.admission.handshake("10.0.0.1")
    assert limited.value.code == "rate_limited" and limited.value.retry_after == pytest.approx(1.0)
    hub.admission.handshake("10.0.0.2")  # another peer has its own bucket
    mono.now += 1.0
    hub.admission.handshake("10.0.0.1")


def test_wall_clock_jumps_change_no_timeout():
    """Only ``wallclock`` jumps (as NTP or a user would move it): nobody is evicted, buckets do not refill."""
    hub, mono, wall = make_hub(stale_seconds=60, send_rate=1.0, send_burst=1)
    session = hub.create_session("x")
    hub.admission.send(session)
    for jump in (2 * 3600, -4 * 3600):
        wall.now += jump
        assert hub.remove_stale(60) == []
        with pytest.raises(ProtocolError):
            hub.admission.send(session)  # a wall jump does not refill the bucket
    assert session.client_id in hub.sessions
    mono.now += 61  # real idleness still evicts
    assert hub.remove_stale(60) == [session.client_id]
