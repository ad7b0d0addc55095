"""Operator routes for commands (docs/BACKENDS.md): call into a client over HTTP, list and read commands.

    POST /ws/call/{client}          {"action", "params"?, "timeout"?, "wait"?}  -> the result, or an error
    GET  /ws/commands               pending and recent commands
    GET  /ws/commands/{command_id}  one command (``?wait=`` seconds for it to end)

``client`` is a client id, or a client type (``lightroom``: the one of that
type heard from last). A call that did not end in a result answers the
error shape with the code of how it ended (``command_expired`` 504,
``command_unknown`` 409, ``command_failed`` 422, ``not_supported`` 422) and
the ``command_id``.
"""

import time
import uuid

import falcon
import orjson

from services import protocol
from services.gateway.hub_client import HubError
from services.gateway.inputs import InputError, optional_number, query_number
from services.gateway.resources import _Resource, ok

DEFAULT_TIMEOUT = 30.0
MAX_COMMAND_ID = 64
_FAILED_CODES = {"expired": "command_expired", "unknown": "command_unknown"}


def _target(value):
    try:
        uuid.UUID(value)
        return protocol.TARGET_CLIENT
    except ValueError:
        pass
    if not protocol.valid_type(value):
        raise InputError(400, "the path must name a client id or a client type", "client_id")
    return protocol.TARGET_TYPE


def _answer_ended(resp, command):
    """200 with the result for ``done``; else the error shape with how it ended."""
    state = command["state"]
    if state == "done":
        ok(resp, {"command_id": command["command_id"], "result": command.get("result"), "command": command})
        return
    if state == "failed":
        error = command.get("error") or {}
        code = "not_supported" if error.get("code") == "not_supported" else "command_failed"
        message = error.get("message") or code
    else:
        code = _FAILED_CODES[state]
        message = ("the client did not get the command before its deadline (it did not run)" if state == "expired"
                   else "the client got the command but did not answer in time (it may have run)")
    resp.status = protocol.ERRORS[code].http_status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = orjson.dumps({"success": False, "error": message, "code": code,
                              "command_id": command["command_id"], "command": command})


class Call(_Resource):
    """POST /ws/call/{client_id}: run an action on a client and answer with its outcome."""

    async def on_post(self, req, resp, client_id):
        target = _target(client_id)
        body = await self.body(req)
        action = body.get("action")
        if not protocol.valid_type(action):
            raise InputError(400, "field 'action' must be a short identifier (letter first, at most 64)", "action")
        params = body.get("params", {})
        if params == []:
            params = {}  # an empty Lua table
        if len(orjson.dumps(params)) > self.config.max_message_bytes:
            raise InputError(413, f"field 'params' is larger than {self.config.max_message_bytes} bytes", "params")
        timeout = optional_number(body, "timeout", minimum=0.001) or DEFAULT_TIMEOUT
        wait = body.get("wait", True)
        if not isinstance(wait, bool):
            raise InputError(400, "field 'wait' must be true or false", "wait")
        command_id = uuid.uuid4().hex
        fields = {"command_id": command_id, "target": target, "to": client_id, "action": action, "params": params,
                  "within": timeout, "caller": "http"}
        give_up = time.monotonic() + timeout + self.config.hub_timeout
        hold = min(timeout, self.config.poll_max_wait) if wait else 0.0
        try:
            reply = await self.hub.request(protocol.OP_CALL, timeout=hold + self.config.hub_timeout, wait=hold,
                                           **fields)
        except HubError as ex:
            if ex.field == "within":  # the hub's name for this route's "timeout"
                raise InputError(400, ex.reason.replace("within", "timeout"), "timeout") from None
            raise
        command = reply["command"]
        if not wait:
            ok(resp, {"command_id": command_id, "command": command})
            return
        while command["state"] not in ("done", "failed", "expired", "unknown") and time.monotonic() < give_up:
            hold = max(0.0, min(give_up - time.monotonic(), self.config.poll_max_wait))
            reply = await self.hub.request(protocol.OP_COMMAND, timeout=hold + self.config.hub_timeout,
                                           command_id=command_id, wait=hold)
            command = reply["command"]
        if command["state"] not in ("done", "failed", "expired", "unknown"):
            command["state"] = "unknown"  # the hub should have ended it by now; say what a caller must assume
        _answer_ended(resp, command)


class Commands(_Resource):
    """GET /ws/commands: pending commands and the most recent finished ones."""

    async def on_get(self, req, resp):
        reply = await self.hub.request(protocol.OP_COMMANDS)
        ok(resp, dict(reply["commands"]))


class Command(_Resource):
    """GET /ws/commands/{command_id}?wait=: one command; 404 (``unknown_command``) when the hub has none."""

    async def on_get(self, req, resp, command_id):
        if not command_id or len(command_id) > MAX_COMMAND_ID:
            raise InputError(400, f"command_id must be 1 to {MAX_COMMAND_ID} characters", "command_id")
        wait = min(query_number(req, "wait") or 0.0, self.config.poll_max_wait)
        reply = await self.hub.request(protocol.OP_COMMAND, timeout=wait + self.config.hub_timeout,
                                       command_id=command_id, wait=wait)
        ok(resp, {"command": reply["command"]})
