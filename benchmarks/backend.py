"""Publishing over ZeroMQ as a backend service does.

``Backend`` uses the bridge's own library (``services.notifier.client``) when
the notifier runs; without a notifier it stands in for it, binding an XPUB
where the hub's SUB connects (BRIDGE_EVENTS_OUT), so the hub's own path can
be measured alone. ``mode`` says which one a figure came from.
"""

import importlib
import os
import time

import zmq

from services import protocol


def _library():
    try:
        return importlib.import_module("services.notifier.client")
    except ImportError:
        return None


class Backend:
    """Publishes benchmark messages to a channel over ZeroMQ; ``mode`` is library or hub-direct."""

    def __init__(self, env, use_notifier):
        self.env = env
        self.sock = None
        self.lib = None
        self.mode = None
        library = _library() if use_notifier else None
        if library is not None:
            for key in ("BRIDGE_EVENTS_IN", "BRIDGE_NOTIFIER_RPC", "BRIDGE_CLIENT_EVENTS"):
                os.environ[key] = env[key]
            self.lib = library.get_websocket_fallback()
            self.mode = "library"
        elif not use_notifier:
            ctx = zmq.Context.instance()
            self.sock = ctx.socket(zmq.XPUB)
            self.sock.setsockopt(zmq.SNDHWM, 0)
            self.sock.setsockopt(zmq.LINGER, 1000)
            self.sock.bind(env["BRIDGE_EVENTS_OUT"])
            self._wait_subscribed()
            self.mode = "hub-direct"

    @property
    def available(self):
        return self.mode is not None

    def _wait_subscribed(self, timeout=10.0):
        # The hub's SUB connects on its reconnect timer; its subscription
        # arrives here as b"\x01publish". Until then PUB would drop messages.
        if not self.sock.poll(int(timeout * 1000)):
            raise RuntimeError("the hub did not subscribe to the stand-in notifier")
        self.sock.recv()

    def publish(self, channel, message):
        """Send one message to ``channel``'s subscribers."""
        if self.lib is not None:
            self.lib.broadcast(message, channel=channel)
        else:
            event = protocol.publish_event(protocol.TARGET_CHANNEL, message, channel)
            self.sock.send_multipart(protocol.encode_event(protocol.TOPIC_PUBLISH, event))

    def encoded(self, channel, message):
        """Pre-encoded frames for the stand-in path (to measure the hub, not the sender)."""
        event = protocol.publish_event(protocol.TARGET_CHANNEL, message, channel)
        return protocol.encode_event(protocol.TOPIC_PUBLISH, event)

    def close(self):
        if self.lib is not None and hasattr(self.lib, "close"):
            self.lib.close()
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def now():
    """The clock every benchmark process shares (CLOCK_MONOTONIC is system-wide on Linux)."""
    return time.monotonic()
