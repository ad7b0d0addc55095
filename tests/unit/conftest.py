"""Unit-test helpers: a hub driven by plain calls with an injected clock and ids."""

import itertools

import pytest

from services.hub.config import HubConfig
from services.hub.hub import Hub


class Clock:
    """A monotonic clock the test moves by hand (``clock.now += 5``)."""

    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def make_hub():
    """``make_hub(**config) -> (hub, clock, replies)``: no sockets, no sleeping."""

    def make(**config):
        clock = Clock()
        replies = []
        ids = (f"client-{n}" for n in itertools.count(1))
        hub = Hub(HubConfig(**config), lambda *a: replies.append(a),
                  clock=clock, wallclock=lambda: 1_700_000_000.0, new_id=lambda: next(ids))
        return hub, clock, replies

    return make
