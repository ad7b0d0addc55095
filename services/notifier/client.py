"""The library for backend services: publish to the plugin clients, hear what they send.

    from services.notifier.client import get_websocket_fallback, job_progress, Listener

    ws = get_websocket_fallback()
    ws.broadcast({"type": "system_status", "status": {"cpu_usage": 45.2}})        # every client
    ws.broadcast({"type": "job_progress", "job_id": "j1", "progress": 50}, channel="jobs")
    ws.send_to_client(client_id, {"type": "notification", "message": "Hello"})
    ws.send_to_client_type("lightroom", {"type": "reload_config", "config": {}})
    job_progress("j1", 50, stage="processing", message="Applying settings")   # channel "jobs"

Events go to the notifier at BRIDGE_EVENTS_IN over a PUSH socket, framed as
``[TAG, msgpack {target, to, message}]`` (docs/BACKENDS.md). Every call
returns within the publisher's timeout (BRIDGE_SEND_TIMEOUT, default 2 s):
``True`` once the notifier's connection has taken the event, ``False`` when
it could not (the notifier is gone or overloaded; counted in ``dropped`` and
logged), or ``NotifierUnavailable`` instead of ``False`` with
``raise_on_drop=True``. A bad message raises ``MessageError`` (a
``ValueError``) before anything is sent: progress outside 0-100 is an error,
not a message. After one timed-out call, later calls fail at once until the
connection is back, so a backend is not slowed down while the notifier
restarts. At exit, queued events are flushed for up to the timeout, so a
process that publishes one event and exits loses nothing.

With BRIDGE_CURVE_DIR (or ``curve_dir=``, or ``server_key=`` and
``client_key=`` for a backend on another machine) the publisher and the
listener connect as CURVE clients (docs/SECURITY.md); a key the notifier does
not accept looks like a notifier that is not there: ``False`` after the timeout.
"""

import atexit
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
_NOTIFY_BUILDERS = dict(messages.BUILDERS, job_complete=messages.job_complete)
_live = weakref.WeakSet()


class NotifierUnavailable(RuntimeError):
    """The notifier did not take an event within the timeout (raised only with ``raise_on_drop``)."""


class Publisher:
    """Sends events to the notifier; thread-safe, fork-aware, every call bounded by ``timeout``.

    CURVE keys: ``server_key`` (the bridge's ``server.key`` file or its z85
    public key) with ``client_key`` (this backend's ``.key_secret`` file),
    else the folder ``curve_dir``, else BRIDGE_CURVE_DIR; none: plain loopback.
    """

    def __init__(self, endpoint=None, timeout=None, raise_on_drop=False, environ=os.environ, *,
                 curve_dir=None, server_key=None, client_key=None):
        self.endpoint = endpoint or settings.env_str(environ, "BRIDGE_EVENTS_IN", settings.DEFAULT_EVENTS_IN)
        self.curve = curve.client_keys(curve_dir, server_key, client_key, environ)
        if timeout is None:
            timeout = settings.env_float(environ, "BRIDGE_SEND_TIMEOUT", DEFAULT_TIMEOUT, minimum=0, maximum=600)
        self.timeout = timeout
        self.raise_on_drop = raise_on_drop
        self.sent = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._pid = None
        self._ctx = None
        self._sock = None
        self._sndtimeo = None  # the socket's current SNDTIMEO (ms)
        self._down = False  # the last send timed out: fail fast until the connection is back
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
        frames = protocol.encode_ingest(event)
        if len(frames[1]) > protocol.MAX_FRAME_BYTES:
            raise MessageError("message", f"is larger than {protocol.MAX_FRAME_BYTES} bytes once encoded")
        return self._send(frames)

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

    # ------------------------------------------------------------ helpers
    def _app(self, message, channel):
        return self.broadcast(message, channel or DEFAULT_CHANNELS[message["type"]])

    def job_created(self, job_id, job_type=None, name=None, total=None, channel=None, **extra):
        """``job_created`` to channel ``jobs``: a new job exists (``total`` items, if known)."""
        return self._app(messages.job_created(job_id, job_type, name, total, **extra), channel)

    def job_started(self, job_id, stage=None, channel=None, **extra):
        """``job_started`` to channel ``jobs``."""
        return self._app(messages.job_started(job_id, stage, **extra), channel)

    def job_progress(self, job_id, progress, stage=None, message=None, channel=None, **extra):
        """``job_progress`` to channel ``jobs``: ``progress`` in percent, 0-100 (else ``MessageError``)."""
        return self._app(messages.job_progress(job_id, progress, stage, message, **extra), channel)

    def job_completed(self, job_id, result=None, channel=None, **extra):
        """``job_completed`` to channel ``jobs``, with a ``result`` object."""
        return self._app(messages.job_completed(job_id, result, **extra), channel)

    def job_failed(self, job_id, error, channel=None, **extra):
        """``job_failed`` to channel ``jobs``; ``error`` is a string or an object."""
        return self._app(messages.job_failed(job_id, error, **extra), channel)

    def photo_imported(self, photo_id, path=None, job_id=None, channel=None, **extra):
        """``photo_imported`` to channel ``photos``."""
        return self._app(messages.photo_imported(photo_id, path, job_id, **extra), channel)

    def photo_analyzed(self, photo_id, analysis=None, job_id=None, channel=None, **extra):
        """``photo_analyzed`` to channel ``photos``, with an ``analysis`` object."""
        return self._app(messages.photo_analyzed(photo_id, analysis, job_id, **extra), channel)

    def session_created(self, session_id, name=None, channel=None, **extra):
        """``session_created`` to channel ``sessions``."""
        return self._app(messages.session_created(session_id, name, **extra), channel)

    def system_status(self, status, channel=None, **extra):
        """``system_status`` to channel ``system`` (the notifier also samples one itself)."""
        return self._app(messages.system_status(status, **extra), channel)

    def resource_warning(self, resource, value, threshold, level="warning", message=None, channel=None, **extra):
        """``resource_warning`` to channel ``system``; ``level`` is warning, critical or ok."""
        return self._app(messages.resource_warning(resource, value, threshold, level, message, **extra), channel)

    # ---------------------------------------------------------- transport
    def _socket(self):
        if self._pid != os.getpid():  # a forked child must not touch its parent's sockets
            self._inherited = (self._ctx, self._sock)  # kept, never closed, so no destructor touches them
            self._ctx = self._sock = None
            self._pid = os.getpid()
        if self._sock is None:
            self._ctx = zmq.Context(1)
            sock = self._ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.IMMEDIATE, 1)  # queue only on a live connection: a gone notifier is noticed
            sock.setsockopt(zmq.SNDHWM, 1000)
            sock.setsockopt(zmq.LINGER, int(self.timeout * 1000))
            if self.curve is not None:
                curve.connect_as_client(sock, self.curve)
            sock.connect(self.endpoint)
            self._sock = sock
            self._sndtimeo = None
        return self._sock

    def _send(self, frames):
        deadline = time.monotonic() + self.timeout
        if not self._lock.acquire(timeout=self.timeout):
            return self._drop("another thread's send is still waiting")
        try:
            if self._closed:
                raise NotifierUnavailable("this publisher is closed")
            sock = self._socket()
            wait = 0 if self._down else max(0, int((deadline - time.monotonic()) * 1000))
            if wait != self._sndtimeo:  # setting it costs more than the send; it rarely changes
                sock.setsockopt(zmq.SNDTIMEO, wait)
                self._sndtimeo = wait
            try:
                protocol.send_frames(sock, frames)
            except zmq.Again:
                self._down = True
                return self._drop(f"the notifier at {self.endpoint} did not take the event within {self.timeout:g} s")
            if self._down:
                log.info("the notifier at %s takes events again", self.endpoint)
            self._down = False
            self.sent += 1
            return True
        finally:
            self._lock.release()

    def _drop(self, reason):
        self.dropped += 1
        now = time.monotonic()
        if now - self._last_warning >= 60:
            self._last_warning = now
            log.warning("event dropped: %s (%d dropped by this process)", reason, self.dropped)
        if self.raise_on_drop:
            raise NotifierUnavailable(reason)
        return False

    def close(self, linger=None):
        """Flush what is queued (at most ``linger`` seconds, default the timeout) and close."""
        linger = self.timeout if linger is None else linger
        if not self._lock.acquire(timeout=max(linger, 0.1)):
            return
        try:
            self._closed = True
            if self._sock is not None and self._pid == os.getpid():
                self._sock.close(linger=int(linger * 1000))
                self._ctx.term()  # returns once queued events are out, or the linger has passed
            self._sock = self._ctx = None
        finally:
            self._lock.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


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


def job_created(*args, **kwargs):
    """``Publisher.job_created`` on the default publisher."""
    return get_websocket_fallback().job_created(*args, **kwargs)


def job_started(*args, **kwargs):
    """``Publisher.job_started`` on the default publisher."""
    return get_websocket_fallback().job_started(*args, **kwargs)


def job_progress(*args, **kwargs):
    """``Publisher.job_progress`` on the default publisher."""
    return get_websocket_fallback().job_progress(*args, **kwargs)


def job_completed(*args, **kwargs):
    """``Publisher.job_completed`` on the default publisher."""
    return get_websocket_fallback().job_completed(*args, **kwargs)


def job_failed(*args, **kwargs):
    """``Publisher.job_failed`` on the default publisher."""
    return get_websocket_fallback().job_failed(*args, **kwargs)


def photo_imported(*args, **kwargs):
    """``Publisher.photo_imported`` on the default publisher."""
    return get_websocket_fallback().photo_imported(*args, **kwargs)


def photo_analyzed(*args, **kwargs):
    """``Publisher.photo_analyzed`` on the default publisher."""
    return get_websocket_fallback().photo_analyzed(*args, **kwargs)


def session_created(*args, **kwargs):
    """``Publisher.session_created`` on the default publisher."""
    return get_websocket_fallback().session_created(*args, **kwargs)


def system_status(*args, **kwargs):
    """``Publisher.system_status`` on the default publisher."""
    return get_websocket_fallback().system_status(*args, **kwargs)


def resource_warning(*args, **kwargs):
    """``Publisher.resource_warning`` on the default publisher."""
    return get_websocket_fallback().resource_warning(*args, **kwargs)


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
