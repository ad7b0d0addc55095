"""Hear what the plugin clients send: a SUB to the hub's BRIDGE_CLIENT_EVENTS.

Every message a client sends over ``POST /ws/send`` that the hub does not
answer itself (anything but ping, register, subscribe, unsubscribe) is
published by the hub as ``[b"client.<type>", TAG, msgpack event]`` with the
sender's ``client_id``, ``client_type``, ``client_name`` and a ``timestamp``.

    listener = Listener(types=["job_progress"])

    @listener.on("job_progress")
    def progress(event):
        print(event.client_id, event.message["progress"])

    listener.run(timeout=60)          # or listener.start() for a thread, or: for event in listener: ...

PUB/SUB semantics: a listener hears what is sent after its subscription
reached the hub (a few milliseconds after it is created); the hub keeps no
history for listeners that were not running. With CURVE keys (as for
``Publisher``) it connects as a CURVE client; a key the hub does not accept
hears nothing.
"""

import logging
import os
import threading
import time
from dataclasses import dataclass

import zmq

from services import curve, protocol, settings
from services.protocol import ProtocolError

log = logging.getLogger(__name__)

SLICE = 0.2  # receive waits in slices this long, so close() is noticed
ANY = "*"


@dataclass(frozen=True)
class ClientEvent:
    """One message a plugin client sent, with who sent it and when (the hub's clock)."""

    type: str
    message: dict
    client_id: str
    client_type: str
    client_name: str
    timestamp: str


def _event(frames):
    _, event = protocol.decode_event(frames)
    message = event.get("message")
    if not isinstance(message, dict) or not protocol.valid_type(message.get("type")):
        raise ProtocolError("bad_protocol", "client event without a valid message")
    if not isinstance(event.get("client_id"), str):
        raise ProtocolError("bad_protocol", "client event without client_id")
    return ClientEvent(
        type=message["type"], message=message, client_id=event["client_id"],
        client_type=event.get("client_type"), client_name=event.get("client_name"),
        timestamp=event.get("timestamp"),
    )


class Listener:
    """Receives client-sent messages; iterate it, call ``receive``, or register handlers with ``on``."""

    def __init__(self, types=None, endpoint=None, environ=os.environ, *, curve_dir=None, server_key=None,
                 client_key=None):
        self.endpoint = endpoint or settings.env_str(environ, "BRIDGE_CLIENT_EVENTS", settings.DEFAULT_CLIENT_EVENTS)
        keys = curve.client_keys(curve_dir, server_key, client_key, environ)  # before any socket: may raise
        self.types = frozenset(types) if types else None
        self.handlers = {}
        self._stopped = threading.Event()
        self._receiving = threading.RLock()  # close() may be called from a handler
        self._thread = None
        self._ctx = zmq.Context(1)
        self._sock = self._ctx.socket(zmq.SUB)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.RCVHWM, 10000)
        self._sock.setsockopt(zmq.MAXMSGSIZE, protocol.MAX_FRAME_BYTES)
        for prefix in sorted(self.types or [""]):
            self._sock.setsockopt(zmq.SUBSCRIBE, protocol.TOPIC_CLIENT + prefix.encode())
        if keys is not None:
            curve.connect_as_client(self._sock, keys)
        self._sock.connect(self.endpoint)

    def on(self, message_type, handler=None):
        """Call ``handler(event)`` for each message of ``message_type`` (``"*"``: every type).

        Usable as a decorator: ``@listener.on("job_progress")``.
        """
        if message_type != ANY and self.types is not None and message_type not in self.types:
            raise ValueError(f"this listener only hears {sorted(self.types)}; create it with types=None")

        def register(fn):
            self.handlers.setdefault(message_type, []).append(fn)
            return fn

        return register(handler) if handler is not None else register

    def receive(self, timeout=None):
        """The next ``ClientEvent``, or ``None`` after ``timeout`` seconds (``None``: until closed)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._receiving:
            while not self._stopped.is_set():
                left = SLICE if deadline is None else min(SLICE, deadline - time.monotonic())
                if left <= 0:
                    return None
                if not self._sock.poll(int(left * 1000) + 1, zmq.POLLIN):
                    continue
                frames = self._sock.recv_multipart(zmq.NOBLOCK)
                try:
                    event = _event(frames)
                except ProtocolError as ex:
                    log.warning("ignored a bad client event: %s", ex.reason)
                    continue
                if self.types is None or event.type in self.types:
                    return event
        return None

    def __iter__(self):
        """Every event until ``close()``."""
        while True:
            event = self.receive()
            if event is None:
                return
            yield event

    def dispatch(self, event):
        """Run the handlers registered for ``event.type`` and for ``"*"``; a failing handler is logged."""
        for handler in self.handlers.get(event.type, []) + self.handlers.get(ANY, []):
            try:
                handler(event)
            except Exception:
                log.exception("handler for %s failed", event.type)

    def run(self, timeout=None):
        """Dispatch events to handlers until ``close()`` or until ``timeout`` seconds pass."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._stopped.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            event = self.receive(left)
            if event is not None:
                self.dispatch(event)

    def start(self):
        """Run the handlers on a daemon thread; returns the listener."""
        self._thread = threading.Thread(target=self.run, name="bridge-listener", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout=2.0):
        """Stop receiving (wakes ``run`` and iterators within 0.2 s) and close the socket."""
        self._stopped.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if self._receiving.acquire(timeout=timeout):
            try:
                if not self._sock.closed:
                    self._sock.close()
                    self._ctx.term()
            finally:
                self._receiving.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
