"""The library for backend services: publish to the plugin clients, hear what they send.

    from services.notifier.client import get_websocket_fallback, job_progress, Listener

    ws = get_websocket_fallback()
    ws.broadcast({"type": "system_status", "status": {"cpu_usage": 45.2}})        # every client
    ws.broadcast({"type": "job_progress", "job_id": "j1", "progress": 50}, channel="jobs")
    ws.send_to_client(client_id, {"type": "notification", "message": "Hello"})
    ws.send_to_client_type("lightroom", {"type": "reload_config", "config": {}})
    job_progress("j1", 50, stage="processing", message="Applying settings")   # channel "jobs"

Events go to the notifier's request endpoint, BRIDGE_NOTIFIER_RPC, over a
DEALER socket, and the notifier acknowledges each once it has numbered it
and holds it for the hubs (docs/BACKENDS.md, docs/PROTOCOL.md rule 30).
Sends are pipelined: a call returns ``True`` as soon as the event is on a
live connection to the notifier, and the acknowledgements are collected as
they come. Every call returns within the publisher's timeout
(BRIDGE_SEND_TIMEOUT, default 2 s). It returns ``False`` (or raises
``NotifierUnavailable`` with ``raise_on_drop=True``) when the notifier is not
there, or when events already sent were not acknowledged within the timeout
(the notifier was killed or hangs): those are counted in ``dropped`` and
``unconfirmed`` and logged, and from then on calls fail at once until the
notifier answers again, so a backend is not slowed down while the notifier
restarts. ``confirm=True`` makes each call wait for its own acknowledgement;
``flush()`` waits for all of them. A bad message raises ``MessageError`` (a
``ValueError``) before anything is sent: progress outside 0-100 is an error,
not a message. At exit, outstanding acknowledgements are awaited for up to
the timeout, so a process that publishes one event and exits loses nothing.

With BRIDGE_CURVE_DIR (or ``curve_dir=``, or ``server_key=`` and
``client_key=`` for a backend on another machine) the publisher and the
listener connect as CURVE clients (docs/SECURITY.md); a key the notifier does
not accept looks like a notifier that is not there: ``False`` after the timeout.
"""

import atexit
import collections
import inspect
import math
import logging
import os
import threading
import time
import weakref

import zmq

from services import curve, messages, protocol, settings
from services.messages import DEFAULT_CHANNELS, MessageError
from services.notifier.calls import (
    AsyncCaller, BridgeUnavailable, CallError, Caller, CommandFailed, Expired, NoSuchClient, NoSuchCommand,
    NotSupported, StillPending, TooManyCommands, Unknown,
)
from services.notifier.listener import ClientEvent, Listener
from services.protocol import ProtocolError

__all__ = [
    "DEFAULT_CHANNELS", "ClientEvent", "Listener", "MessageError", "NotifierUnavailable", "Publisher",
    "broadcast", "get_websocket_fallback", "send_to_client", "send_to_client_type", "send_websocket_notification",
    "job_created", "job_started", "job_progress", "job_completed", "job_failed", "photo_imported",
    "photo_analyzed", "session_created", "system_status", "resource_warning",
    # calls into a client (services/notifier/calls.py)
    "AsyncCaller", "BridgeUnavailable", "CallError", "Caller", "CommandFailed", "Expired", "NoSuchClient",
    "NoSuchCommand", "NotSupported", "StillPending", "TooManyCommands", "Unknown", "call", "result",
]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 2.0
DEFAULT_WINDOW = 10000  # events waiting for their acknowledgement at once
PROBE_SECONDS = 0.1  # while the notifier does not answer: at most one ping this often
PROBE_WAIT_SECONDS = 0.005  # how long a failing call waits for the ping's answer
_NOTIFY_BUILDERS = dict(messages.BUILDERS, job_complete=messages.job_complete)
_live = weakref.WeakSet()


class NotifierUnavailable(RuntimeError):
    """The notifier did not take an event within the timeout (raised only with ``raise_on_drop``)."""


def _typed(message_type):
    """The ``Publisher`` method for one application type: its builder's fields, then ``channel``.

    ``channel`` (also the one positional argument after the builder's own)
    sends it elsewhere than its default channel (``messages.DEFAULT_CHANNELS``).
    """
    build = messages.BUILDERS[message_type]
    signature = inspect.signature(build)
    params = list(signature.parameters.values())
    positional = sum(1 for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD)
    default_channel = messages.DEFAULT_CHANNELS[message_type]

    def send(self, *args, channel=None, **extra):
        if len(args) == positional + 1:
            *args, channel = args
        return self.broadcast(build(*args, **extra), channel or default_channel)

    channel = inspect.Parameter("channel", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)
    params.insert(positional, channel)
    send.__signature__ = signature.replace(
        parameters=[inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)] + params)
    send.__name__ = send.__qualname__ = message_type
    send.__doc__ = f"``{message_type}`` to channel ``{default_channel}``: {build.__doc__}"
    return send


def _on_default(message_type):
    """The module function for one application type: that ``Publisher`` method on the default publisher."""

    def send(*args, **kwargs):
        return getattr(get_websocket_fallback(), message_type)(*args, **kwargs)

    send.__name__ = send.__qualname__ = message_type
    send.__doc__ = f"``Publisher.{message_type}`` on the default publisher."
    return send


class Publisher:
    """Sends events to the notifier, acknowledged; thread-safe, fork-aware, every call bounded by ``timeout``.

    ``endpoint`` is the notifier's request endpoint (BRIDGE_NOTIFIER_RPC,
    default tcp://127.0.0.1:5105). At most ``window`` events wait for their
    acknowledgement at once (a call waits for room, within the timeout).

    CURVE keys: ``server_key`` (the bridge's ``server.key`` file or its z85
    public key) with ``client_key`` (this backend's ``.key_secret`` file),
    else the folder ``curve_dir``, else BRIDGE_CURVE_DIR; none: plain loopback.
    """

    def __init__(self, endpoint=None, timeout=None, raise_on_drop=False, environ=os.environ, *,
                 curve_dir=None, server_key=None, client_key=None, confirm=False, window=DEFAULT_WINDOW):
        self.endpoint = endpoint or settings.env_str(environ, "BRIDGE_NOTIFIER_RPC", settings.DEFAULT_NOTIFIER_RPC)
        self.curve = curve.client_keys(curve_dir, server_key, client_key, environ)
        if timeout is None:
            timeout = settings.env_float(environ, "BRIDGE_SEND_TIMEOUT", DEFAULT_TIMEOUT, minimum=0, maximum=600)
        self.timeout = timeout
        self.raise_on_drop = raise_on_drop
        self.confirm = confirm
        self.window = max(1, window)
        self.sent = 0  # events handed to a connection to the notifier
        self.confirmed = 0  # ... and acknowledged by it
        self.unconfirmed = 0  # ... and not acknowledged within the timeout (also counted in dropped)
        self.rejected = 0  # ... and refused by its checks (a library older or newer than the notifier)
        self.dropped = 0  # events this publisher could not deliver to the notifier, for whatever reason
        self._lock = threading.Lock()
        self._pid = None
        self._ctx = None
        self._sock = None
        self._sndtimeo = None  # the socket's current SNDTIMEO (ms)
        self._pending = collections.deque()  # (request id, sent at) not acknowledged yet, oldest first
        self._next_id = 1
        self._last_rejected = None  # the id of the last event the notifier refused
        self._probe_at = -1e9  # when the last ping went out while the notifier was not answering
        self._down = False  # the notifier did not answer in time: fail fast until it answers again
        self._closed = False
        self._inherited = None
        self._last_warning = -1e9
        _live.add(self)

    # ------------------------------------------------------------ targets
    def publish(self, target, message, to=None):
        """Send ``message`` to ``target`` (all, channel, client, client_type) named by ``to``."""
        messages.check_message(message)
        try:
            event = protocol.check_publish(protocol.publish_event(target, message, to))
        except ProtocolError as ex:
            raise MessageError(ex.field or "target", ex.reason) from None
        payload = protocol.encode_ingest(event)[1]
        if len(payload) > protocol.MAX_FRAME_BYTES:
            raise MessageError("message", f"is larger than {protocol.MAX_FRAME_BYTES} bytes once encoded")
        return self._send(payload)

    def broadcast(self, message, channel=None):
        """Send to every client, or only to the subscribers of ``channel``."""
        if channel is None:
            return self.publish(protocol.TARGET_ALL, message)
        return self.publish(protocol.TARGET_CHANNEL, message, channel)

    def send_to_client(self, client_id, message):
        """Send to one client (an unknown id is counted as undeliverable by the hub)."""
        return self.publish(protocol.TARGET_CLIENT, message, client_id)

    def send_to_client_type(self, client_type, message):
        """Send to every client of one type, e.g. ``"lightroom"``."""
        return self.publish(protocol.TARGET_TYPE, message, client_type)

    def send_websocket_notification(self, message_type, data, channel=None):
        """The seed's helper: build ``message_type`` from ``data`` and send it.

        Application types are validated by their builder and go to their
        default channel unless ``channel`` is given; ``job_complete`` becomes
        ``job_completed`` or ``job_failed``. Any other type is sent as
        ``{type, **data}`` to ``channel``, or to every client without one.
        """
        data = dict(data or {})
        build = _NOTIFY_BUILDERS.get(message_type)
        if build is None:
            message = messages.check_message(dict(data, type=message_type))
        else:
            data.pop("type", None)
            try:
                message = build(**data)
            except TypeError as ex:
                raise MessageError("data", f"does not fit {message_type}: {ex}") from None
        return self.broadcast(message, channel or DEFAULT_CHANNELS.get(message["type"]))

    # A method per application type (job_progress, photo_imported…) is added below the class, from the
    # one list of them (services/messages.py BUILDERS): its builder's fields, then ``channel``.

    # ---------------------------------------------------------- transport
    def _socket(self):
        if self._pid != os.getpid():  # a forked child must not touch its parent's sockets
            self._inherited = (self._ctx, self._sock)  # kept, never closed, so no destructor touches them
            self._ctx = self._sock = None
            self._pending.clear()  # the parent's: its own acknowledgements go to it
            self._pid = os.getpid()
        if self._sock is None:
            self._ctx = zmq.Context(1)
            sock = self._ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.IMMEDIATE, 1)  # queue only on a live connection: a gone notifier is noticed
            sock.setsockopt(zmq.SNDHWM, self.window)
            sock.setsockopt(zmq.LINGER, 0)  # what matters is acknowledged, not what is still queued
            sock.setsockopt(zmq.MAXMSGSIZE, protocol.MAX_FRAME_BYTES)
            if self.curve is not None:
                curve.connect_as_client(sock, self.curve)
            sock.connect(self.endpoint)
            self._sock = sock
            self._sndtimeo = None
        return self._sock

    def _send(self, payload):
        deadline = time.monotonic() + self.timeout
        if not self._lock.acquire(timeout=self.timeout):
            return self._drop("another thread's send is still waiting")
        try:
            if self._closed:
                raise NotifierUnavailable("this publisher is closed")
            sock = self._socket()
            self._collect(sock, 0)
            if self._down and not self._probe(sock):
                return self._drop(f"the notifier at {self.endpoint} is not answering")
            while len(self._pending) >= self.window:  # wait for room, within the timeout
                if not self._collect(sock, deadline - time.monotonic()) or self._down:
                    return self._drop(f"the notifier at {self.endpoint} did not acknowledge in time")
            wait = max(0, int((deadline - time.monotonic()) * 1000))
            if wait != self._sndtimeo:  # setting it costs more than the send; it rarely changes
                sock.setsockopt(zmq.SNDTIMEO, wait)
                self._sndtimeo = wait
            req_id = self._next_id
            self._next_id += 1
            try:
                protocol.send_frames(sock, protocol.encode_notifier_request(protocol.OP_PUBLISH, req_id, payload))
            except zmq.Again:
                self._give_up()
                return self._drop(f"the notifier at {self.endpoint} did not take the event within {self.timeout:g} s")
            self._pending.append((req_id, time.monotonic()))
            self.sent += 1
            if self.confirm:
                while self._pending and self._pending[0][0] <= req_id and not self._down:
                    if not self._collect(sock, deadline - time.monotonic()):
                        break
                if self._last_rejected == req_id:
                    return False
                if self._down or (self._pending and self._pending[0][0] <= req_id):
                    return self._drop(f"the notifier at {self.endpoint} did not acknowledge within {self.timeout:g} s",
                                      counted=True)
            return True
        finally:
            self._lock.release()

    def _collect(self, sock, seconds):
        """Read the notifier's answers, waiting up to ``seconds`` for the first; False when none came.

        An answer with id N confirms every event up to N (the notifier takes
        a connection's requests in order and refuses one with an answer of
        its own). Pending events older than the timeout are given up.
        """
        got = False
        wait = max(0, math.ceil(seconds * 1000))
        while sock.poll(wait if not got else 0):
            try:
                reply, _ = protocol.decode_notifier_reply(protocol.recv_frames(sock, zmq.NOBLOCK))
            except (zmq.Again, ProtocolError):
                continue
            got = True
            if self._down:
                log.info("the notifier at %s answers again", self.endpoint)
                self._down = False
            pending = self._pending
            if not reply["ok"]:
                for i, (req_id, _) in enumerate(pending):
                    if req_id == reply["id"]:
                        del pending[i]
                        self.rejected += 1
                        self._last_rejected = reply["id"]
                        self._drop(f"the notifier refused an event: {reply.get('reason')}", counted=True, quiet=True)
                        break
                continue
            while pending and pending[0][0] <= reply["id"]:
                pending.popleft()
                self.confirmed += 1
        self._expire()
        return got

    def _expire(self):
        if self._pending and time.monotonic() - self._pending[0][1] >= self.timeout:
            self._give_up()

    def _give_up(self):
        """The notifier stopped answering: what it did not acknowledge is counted lost; fail fast from now."""
        lost = len(self._pending)
        self._pending.clear()
        self._down = True
        self._probe_at = time.monotonic()
        if lost:
            self.unconfirmed += lost
            self.dropped += lost
            log.warning("%d events sent to the notifier at %s were not acknowledged within %g s: counted as dropped",
                        lost, self.endpoint, self.timeout)

    def _probe(self, sock):
        """While the notifier is not answering: a ping now and then (its answer ends that); True once it answered."""
        now = time.monotonic()
        if now - self._probe_at >= PROBE_SECONDS:
            self._probe_at = now
            req_id = self._next_id
            self._next_id += 1
            try:
                protocol.send_frames(sock, protocol.encode_notifier_request(protocol.OP_PING, req_id), zmq.NOBLOCK)
            except zmq.Again:
                return False
            self._collect(sock, min(self.timeout, PROBE_WAIT_SECONDS))
        return not self._down

    def flush(self, timeout=None):
        """Wait until every event sent is acknowledged (at most ``timeout``, default the timeout); True if all were."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        if not self._lock.acquire(timeout=max(timeout, 0.1)):
            return False
        try:
            if self._sock is None or self._pid != os.getpid():
                return True
            given_up = self.unconfirmed
            while self._pending and not self._down:
                left = deadline - time.monotonic()
                if left <= 0 or not self._collect(self._sock, left):
                    break
            self._expire()
            return not self._pending and self.unconfirmed == given_up
        finally:
            self._lock.release()

    def _drop(self, reason, counted=False, quiet=False):
        if not counted:
            self.dropped += 1
        now = time.monotonic()
        if not quiet and now - self._last_warning >= 60:
            self._last_warning = now
            log.warning("event dropped: %s (%d dropped by this process)", reason, self.dropped)
        if self.raise_on_drop and not quiet:
            raise NotifierUnavailable(reason)
        return False

    def close(self, linger=None):
        """Wait for outstanding acknowledgements (at most ``linger`` seconds, default the timeout) and close."""
        linger = self.timeout if linger is None else linger
        if self._closed:
            return
        self.flush(linger)
        if not self._lock.acquire(timeout=max(linger, 0.1)):
            return
        try:
            self._closed = True
            if self._sock is not None and self._pid == os.getpid():
                self._sock.close(linger=0)
                self._ctx.term()
            self._sock = self._ctx = None
        finally:
            self._lock.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


for _name in messages.BUILDERS:
    setattr(Publisher, _name, _typed(_name))


@atexit.register
def _flush_at_exit():
    for publisher in list(_live):
        publisher.close()


# ------------------------------------------------- the process-wide default
_default = None
_default_lock = threading.Lock()


def get_websocket_fallback():
    """The process's default ``Publisher``, configured from the ``BRIDGE_*`` environment."""
    global _default
    with _default_lock:
        if _default is None or _default._closed:
            _default = Publisher()
        return _default


def broadcast(message, channel=None):
    """``get_websocket_fallback().broadcast``."""
    return get_websocket_fallback().broadcast(message, channel)


def send_to_client(client_id, message):
    """``get_websocket_fallback().send_to_client``."""
    return get_websocket_fallback().send_to_client(client_id, message)


def send_to_client_type(client_type, message):
    """``get_websocket_fallback().send_to_client_type``."""
    return get_websocket_fallback().send_to_client_type(client_type, message)


def send_websocket_notification(message_type, data, channel=None):
    """The seed's helper on the default publisher; see ``Publisher.send_websocket_notification``."""
    return get_websocket_fallback().send_websocket_notification(message_type, data, channel)


# One function per application type, from the one list of them (services/messages.py BUILDERS).
for _name in messages.BUILDERS:
    globals()[_name] = _on_default(_name)
del _name


# ------------------------------------------------------------ calls into a client
_caller = None
_caller_lock = threading.Lock()


def _default_caller():
    global _caller
    with _caller_lock:
        if _caller is None:
            _caller = Caller()
        return _caller


def call(target, action, params=None, timeout=30.0, **options):
    """``Caller().call`` on a shared caller: run ``action`` on a client, return its result (services/notifier/calls.py)."""
    return _default_caller().call(target, action, params, timeout, **options)


def result(command_id, timeout=30.0, **options):
    """``Caller().result`` on the shared caller: wait for a command made with ``call(..., wait=False)``."""
    return _default_caller().result(command_id, timeout, **options)
