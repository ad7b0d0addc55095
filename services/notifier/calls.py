"""Calls into a client: a backend asks Lightroom to do something and gets the outcome (docs/BACKENDS.md).

    from services.notifier.client import call, result, Expired, Unknown, CommandFailed

    photos = call("lightroom", "list_selected", {"limit": 10}, timeout=30)   # the result, or a typed error
    command_id = call("lightroom", "export", {"preset": "web"}, timeout=600, wait=False)
    outcome = result(command_id, timeout=600, progress=lambda pct, text: print(pct, text))

    async with AsyncCaller() as caller:                                       # the asyncio form
        photos = await caller.call("lightroom", "list_selected", {}, timeout=30)

A call is a request to the hub over a DEALER connected to its ROUTER at
BRIDGE_HUB_RPC (the gateway's link, rule 1 of docs/PROTOCOL.md): op ``call``
with a command id chosen here, then ``command`` until the command has ended.
Each request waits at most ``SLICE`` seconds at the hub; one that gets no
answer (the hub restarting) is sent again, and ``call`` with a known command
id only waits on it, so nothing is queued twice. Answers come back on this
connection only.

How a call ends:

- the plugin's return value: returned;
- ``CommandFailed``: the plugin's function raised (``message``, ``code``);
- ``NotSupported``: the plugin has no such action (a ``CommandFailed``);
- ``Expired``: never delivered before the deadline: it did not run, safe to retry;
- ``Unknown``: delivered, no answer in time: it may have run (check before retrying);
- ``NoSuchClient``: no client of that id or type is known to the bridge;
- ``TooManyCommands``: the client or this caller has too many commands pending;
- ``BridgeUnavailable``: the hub did not answer at all (an ``Unknown``: it may have been queued).

A target is a client id (a UUID, as the handshake gave) or a client type
(``lightroom``); pass ``client_type=True`` to force the latter.
"""

import asyncio
import itertools
import os
import socket
import threading
import time
import uuid

import zmq
import zmq.asyncio

from services import curve, protocol, settings

__all__ = [
    "AsyncCaller", "BridgeUnavailable", "CallError", "Caller", "CommandFailed", "Expired", "NoSuchClient",
    "NoSuchCommand", "NotSupported", "StillPending", "TooManyCommands", "Unknown",
]

SLICE = 10.0  # the longest one request waits at the hub; a lost request is noticed after this (+ the timeout)
DEFAULT_TIMEOUT = 30.0  # a command's deadline, seconds from the call
REQUEST_TIMEOUT = 2.0  # how long past its wait a request's answer may take
FINAL = ("done", "failed", "expired", "unknown")


class CallError(Exception):
    """A call did not end in a result; ``command`` is the command as the hub last reported it (or None)."""

    def __init__(self, message, command=None):
        super().__init__(message)
        self.command = command
        self.command_id = (command or {}).get("command_id")


class Expired(CallError):
    """The command was never delivered before its deadline: it did not run, retrying is safe."""


class Unknown(CallError):
    """The command was delivered but no answer came in time: it may have run."""


class BridgeUnavailable(Unknown):
    """The hub did not answer; the command may or may not have been queued."""


class CommandFailed(CallError):
    """The client ran the command and it failed: ``message`` and ``code`` are the client's."""

    def __init__(self, message, command=None, code="command_failed"):
        super().__init__(message, command)
        self.code = code


class NotSupported(CommandFailed):
    """The client has no such action."""


class NoSuchClient(CallError, LookupError):
    """No client of that id or type is known to the bridge."""


class NoSuchCommand(CallError, LookupError):
    """The hub knows no command of that id (never made, or forgotten: docs/BACKENDS.md)."""


class TooManyCommands(CallError):
    """The client or this caller has as many commands pending as the bridge allows; retry later."""


class StillPending(CallError, TimeoutError):
    """``result()``'s own timeout passed while the command is still pending (it goes on)."""


_HUB_ERRORS = {"unknown_client": NoSuchClient, "unknown_command": NoSuchCommand,
               "too_many_commands": TooManyCommands}


def _outcome(command):
    """The result of an ended command, or its error raised."""
    state = command["state"]
    if state == "done":
        return command.get("result")
    if state == "failed":
        error = command.get("error") or {}
        code = error.get("code") or "command_failed"
        kind = NotSupported if code == protocol.ERRORS["not_supported"].name else CommandFailed
        raise kind(error.get("message") or code, command, code)
    if state == "expired":
        raise Expired(f"command {command['command_id']} was not delivered before its deadline", command)
    raise Unknown(f"command {command['command_id']} was delivered but not answered in time", command)


def _is_client_id(target):
    try:
        uuid.UUID(target)
    except ValueError:
        return False
    return True


class _NoAnswer(Exception):
    pass


class AsyncCaller:
    """Calls from an asyncio program; every method is a coroutine. One connection, any number of calls at once.

    ``caller`` names this backend in listings and bounds (default: host and
    pid). CURVE keys as for ``Publisher`` (docs/SECURITY.md).
    """

    def __init__(self, endpoint=None, caller=None, environ=os.environ, *, request_timeout=REQUEST_TIMEOUT,
                 curve_dir=None, server_key=None, client_key=None):
        self.endpoint = endpoint or settings.env_str(environ, "BRIDGE_HUB_RPC", settings.DEFAULT_HUB_RPC)
        self.caller = (caller or f"{socket.gethostname()}:{os.getpid()}")[:64]
        self.request_timeout = request_timeout
        self.curve = curve.client_keys(curve_dir, server_key, client_key, environ)
        self._ids = itertools.count(1)
        self._waiting = {}  # request id -> (future, on_open)
        self._ctx = None
        self._sock = None
        self._reader = None

    # ------------------------------------------------------------ calls
    async def call(self, target, action, params=None, timeout=DEFAULT_TIMEOUT, *, wait=True, progress=None,
                   client_type=False, command_id=None):
        """Run ``action`` on the client ``target`` names; its result, or a ``CallError`` (see the module).

        ``timeout`` is the command's deadline in seconds. With ``wait=False``
        the command id is returned once the hub has queued it; ``result()``
        waits for it later. ``progress(pct, text)`` hears the client's reports.
        """
        by_type = client_type or not _is_client_id(target)
        command_id = command_id or uuid.uuid4().hex
        fields = {
            "command_id": command_id, "target": protocol.TARGET_TYPE if by_type else protocol.TARGET_CLIENT,
            "to": target, "action": action, "params": {} if params is None else params, "within": float(timeout),
            "caller": self.caller,
        }
        if not wait:
            await self._until_answered(protocol.OP_CALL, fields, 0, None, time.monotonic() + self.request_timeout)
            return command_id
        give_up = time.monotonic() + timeout + self.request_timeout + SLICE
        command = await self._until_answered(protocol.OP_CALL, fields, timeout, progress, give_up)
        return await self._follow(command, progress, give_up, None)

    async def result(self, command_id, timeout=DEFAULT_TIMEOUT, *, progress=None):
        """Wait up to ``timeout`` s for the command to end; its result, its error, or ``StillPending``."""
        give_up = time.monotonic() + timeout
        command = await self.command(command_id, wait=timeout, progress=progress)
        return await self._follow(command, progress, give_up, give_up)

    async def command(self, command_id, wait=0.0, *, progress=None):
        """The command as the hub reports it (``state``, ``caller``, ``duration``…), waiting ``wait`` s for its end."""
        fields = {"command_id": command_id}
        return await self._until_answered(protocol.OP_COMMAND, fields, wait, progress,
                                          time.monotonic() + wait + self.request_timeout)

    async def commands(self):
        """Pending and recent commands: ``{"pending": [...], "recent": [...], "count", "stats"}``."""
        reply = await self._request(protocol.OP_COMMANDS, {}, self.request_timeout, None)
        return reply["commands"]

    async def _follow(self, command, progress, give_up, own_deadline):
        while command["state"] not in FINAL:
            left = give_up - time.monotonic()
            if left <= 0:
                if own_deadline is not None:
                    raise StillPending(f"command {command['command_id']} is still {command['state']}", command)
                raise BridgeUnavailable(f"no outcome for command {command['command_id']} from the bridge", command)
            try:
                command = await self._until_answered(protocol.OP_COMMAND, {"command_id": command["command_id"]},
                                                     left, progress, give_up)
            except NoSuchCommand:
                if own_deadline is not None:
                    raise
                # The hub forgot it (restarted without its store): it may have been delivered and run.
                raise Unknown(f"the bridge no longer knows command {command['command_id']}", command) from None
        return _outcome(command)

    async def _until_answered(self, op, fields, wait, progress, give_up):
        """Send ``op`` (waiting ``wait`` s at most at the hub) again and again until it is answered."""
        while True:
            now = time.monotonic()
            slice_ = max(0.0, min(wait, SLICE, give_up - now))
            request = dict(fields, wait=slice_, progress=progress is not None)
            try:
                reply = await self._request(op, request, slice_ + self.request_timeout, progress)
            except _NoAnswer:
                if time.monotonic() >= give_up:
                    raise BridgeUnavailable(f"the bridge hub at {self.endpoint} did not answer", None) from None
                continue
            return reply["command"]

    # ------------------------------------------------------------ the link
    def _open(self):
        if self._sock is None:
            self._ctx = zmq.asyncio.Context()
            sock = self._ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.MAXMSGSIZE, protocol.MAX_REPLY_BYTES)
            if self.curve is not None:
                curve.connect_as_client(sock, self.curve)
            sock.connect(self.endpoint)
            self._sock = sock
            self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _request(self, op, fields, timeout, progress):
        self._open()
        req_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()

        def on_open(reply):
            if progress is not None:
                p = reply["command"].get("progress") or {}
                progress(p.get("pct"), p.get("text"))

        self._waiting[req_id] = (future, on_open)
        try:
            await self._sock.send_multipart(protocol.encode_request(op, req_id, **fields))
            reply = await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise _NoAnswer() from None
        finally:
            self._waiting.pop(req_id, None)
        if not reply.get("ok"):
            kind = _HUB_ERRORS.get(reply.get("code"), CallError)
            raise kind(reply.get("reason") or reply.get("code"), None)
        return reply

    async def _read(self):
        while True:
            frames = await self._sock.recv_multipart()
            try:
                reply = protocol.decode_reply(frames)
            except protocol.ProtocolError:
                continue
            entry = self._waiting.get(reply.get("id"))
            if entry is None:
                continue  # the answer to a request given up on
            future, on_open = entry
            if reply.get("open"):
                try:
                    on_open(reply)
                except Exception:  # a failing progress callback must not end the link
                    pass
            elif not future.done():
                future.set_result(reply)

    async def close(self):
        """Close the connection; calls still waiting end with ``BridgeUnavailable``."""
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        if self._sock is not None:
            self._sock.close()
            self._ctx.term()
            self._sock = self._ctx = None

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()


class Caller:
    """The blocking form: the same methods as ``AsyncCaller``, safe from any thread, calls at once in parallel.

    The connection lives on a private event loop thread; a ``progress``
    callback runs on that thread.
    """

    def __init__(self, endpoint=None, caller=None, environ=os.environ, **options):
        self._async = AsyncCaller(endpoint, caller, environ, **options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="bridge-calls", daemon=True)
        self._thread.start()

    @property
    def caller(self):
        return self._async.caller

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def call(self, target, action, params=None, timeout=DEFAULT_TIMEOUT, **options):
        """See ``AsyncCaller.call``."""
        return self._run(self._async.call(target, action, params, timeout, **options))

    def result(self, command_id, timeout=DEFAULT_TIMEOUT, **options):
        """See ``AsyncCaller.result``."""
        return self._run(self._async.result(command_id, timeout, **options))

    def command(self, command_id, wait=0.0, **options):
        """See ``AsyncCaller.command``."""
        return self._run(self._async.command(command_id, wait, **options))

    def commands(self):
        """See ``AsyncCaller.commands``."""
        return self._run(self._async.commands())

    def close(self):
        """Close the connection and end the loop thread."""
        if self._loop.is_running():
            self._run(self._async.close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
