"""The ``/ws/*`` resources: each validates its input, makes one hub request, shapes the reply.

Resources hold no state; collaborators come in through ``__init__``.
"""

import falcon
import orjson

from services import messages, protocol
from services.endings import BY_POLL_FLAG
from services.gateway.inputs import (
    InputError, client_secret, message_field, optional_bool, optional_number, optional_str, query_number, query_str,
    read_object, required_str,
)


def ok(resp, fields):
    """Answer 200 with ``{"success": true, ...fields}`` (orjson: the hot path)."""
    fields["success"] = True
    resp.content_type = falcon.MEDIA_JSON
    resp.data = orjson.dumps(fields)


class _Resource:
    def __init__(self, hub, config):
        self.hub = hub
        self.config = config

    async def body(self, req):
        return await read_object(req, self.config.max_body, self.config.header_timeout)

    def message(self, body):
        return message_field(body, max_bytes=self.config.max_message_bytes)

    async def publish(self, target, message, to=None):
        reply = await self.hub.request(protocol.OP_PUBLISH, **protocol.publish_event(target, message, to))
        return reply["delivered"]


def _resume_fields(body):
    """A returning client's ``client_id`` and ``client_secret``: both, or neither (docs/DURABILITY.md)."""
    client_id = body.get("client_id")
    secret = body.get("client_secret")
    if client_id is None and secret is None:
        return {}
    return {"client_id": required_str(body, "client_id"), "client_secret": required_str(body, "client_secret")}


class Handshake(_Resource):
    """POST /ws/handshake: a new client id (``connection_established`` queued), or the session it resumes."""

    async def on_post(self, req, resp):
        body = await self.body(req)
        reply = await self.hub.request(
            protocol.OP_HANDSHAKE,
            client_type=optional_str(body, "client_type", "unknown", 64),
            protocol_version=optional_str(body, "protocol_version", protocol.CLIENT_PROTOCOL_VERSION, 16),
            peer=req.remote_addr or "unknown",
            ephemeral=optional_bool(body, "ephemeral"),
            **_resume_fields(body),
        )
        ok(resp, {
            "client_id": reply["client_id"],
            "client_secret": reply["client_secret"],
            "resumed": bool(reply.get("resumed")),
            "protocol_version": reply["protocol_version"],
            "server_time": reply["server_time"],
        })


class Poll(_Resource):
    """GET /ws/poll?client_id=&wait=&ack=: queued messages, long-polling up to ``wait`` seconds."""

    async def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_JSON
        resp.data = await poll_answer(self.hub, self.config, req)


async def poll_answer(hub, config, req):
    """The JSON body answering ``GET /ws/poll`` (``req``: a Falcon request or services/gateway/fastpoll.py's).

    The one implementation of the poll, behind Falcon's route and the poll
    path ahead of Falcon alike; errors are raised for ``errors.refusal``.
    """
    fields, timeout = poll_request(config, req)
    return poll_body(await hub.request(protocol.OP_POLL, timeout=timeout, **fields))


def poll_request(config, req):
    """The hub request a poll makes, checked: ``(fields, timeout)``; ``InputError`` for bad input."""
    client_id = query_str(req, "client_id")
    wait = query_number(req, "wait") or 0.0  # the hub caps it at BRIDGE_POLL_MAX_WAIT
    ack = query_number(req, "ack", integer=True)
    fields = {"client_id": client_id, "wait": wait, "json": True}  # the messages come as the answer writes them
    secret = client_secret(req)
    if secret is not None:
        fields["client_secret"] = secret
    if ack is not None:
        fields["ack"] = ack
    hold = min(wait, config.poll_max_wait)  # how long the hub may hold it
    return fields, hold + config.poll_reply_margin


def poll_body(reply):
    """The JSON body of a poll's answer from the hub's reply.

    The hub sends the messages of a plain poll as JSON text already
    (``messages_json``, each published message encoded once for all its
    recipients): written in as they are, never decoded here.
    """
    text = reply.get("messages_json")
    answer = {} if text is not None else {"messages": reply["messages"]}
    answer["timestamp"] = reply["timestamp"]
    answer["dropped"] = reply.get("dropped", 0)
    for flag in _POLL_FLAGS:  # "more" and the flags that end a session, from services/endings.py
        if reply.get(flag):
            answer[flag] = True
    answer["success"] = True
    if text is None:
        return orjson.dumps(answer)
    return b'{"messages":' + text + b"," + orjson.dumps(answer)[1:]


_POLL_FLAGS = ("more", *BY_POLL_FLAG)


class Send(_Resource):
    """POST /ws/send: a message from a client (ping, register, subscribe… or any application type)."""

    async def on_post(self, req, resp):
        body = await self.body(req)
        reply = await self.hub.request(
            protocol.OP_SEND, client_id=required_str(body, "client_id"), message=self.message(body),
            client_secret=client_secret(req, body),
        )
        ok(resp, {"response": reply["response"]})


class Disconnect(_Resource):
    """POST /ws/disconnect: forget the client; its parked poll is answered at once."""

    async def on_post(self, req, resp):
        body = await self.body(req)
        await self.hub.request(
            protocol.OP_DISCONNECT, client_id=required_str(body, "client_id"), client_secret=client_secret(req, body)
        )
        ok(resp, {"message": "disconnected"})


class Clients(_Resource):
    """GET /ws/clients?after=&limit=: connected clients by id, a page of at most 1 MiB; ``next`` when more follow."""

    async def on_get(self, req, resp):
        page = {}
        after = query_str(req, "after", required=False)
        limit = query_number(req, "limit", minimum=1, integer=True)
        if after is not None:
            page["after"] = after
        if limit is not None:
            page["limit"] = limit
        reply = await self.hub.request(protocol.OP_CLIENTS, **page)
        answer = {"clients": reply["clients"], "count": reply["count"]}
        if reply.get("next") is not None:  # more follow: ask again with ?after=<next>
            answer["next"] = reply["next"]
        ok(resp, answer)


class Status(_Resource):
    """GET /ws/status: the bridge's summary."""

    async def on_get(self, req, resp):
        reply = await self.hub.request(protocol.OP_STATUS)
        status = reply["status"]
        status["running"] = True
        status["gateway"] = {"hub_endpoint": self.config.hub_rpc, "workers": self.config.workers}
        ok(resp, {"status": status})


class Broadcast(_Resource):
    """POST /ws/broadcast: to every client, or to one channel's subscribers."""

    async def on_post(self, req, resp):
        body = await self.body(req)
        message = self.message(body)
        channel = body.get("channel")
        if channel is None:
            delivered = await self.publish(protocol.TARGET_ALL, message)
        elif protocol.valid_channel(channel):
            delivered = await self.publish(protocol.TARGET_CHANNEL, message, channel)
        else:
            raise InputError(400, "field 'channel' must be a channel name (letters, digits, _.:-)", "channel")
        ok(resp, {"delivered": delivered})


class SendToClient(_Resource):
    """POST /ws/send/{client_id}: to one client (404 when unknown)."""

    async def on_post(self, req, resp, client_id):
        body = await self.body(req)
        delivered = await self.publish(protocol.TARGET_CLIENT, self.message(body), client_id)
        ok(resp, {"delivered": delivered})


class SendToType(_Resource):
    """POST /ws/send_to_type/{client_type}: to every client of one client_type."""

    async def on_post(self, req, resp, client_type):
        if not protocol.valid_type(client_type):
            raise InputError(400, "client_type must be a short identifier", "client_type")
        body = await self.body(req)
        delivered = await self.publish(protocol.TARGET_TYPE, self.message(body), client_type)
        ok(resp, {"delivered": delivered})


def _job_progress(body):
    return messages.job_progress(**_pick(body, "job_id", "progress", "stage", "message"))


def _job_complete(body):
    return messages.job_complete(**_pick(body, "job_id", "success", "result", "error"))


def _system_status(body):
    return messages.system_status(body.get("status"))


def _pick(body, *names):
    return {name: body.get(name) for name in names}


NOTIFICATIONS = {
    "job_progress": _job_progress,
    "job_complete": _job_complete,
    "system_status": _system_status,
}


class Notify(_Resource):
    """POST /ws/notify/{kind}: the seed's notification helpers, to their default channel."""

    async def on_post(self, req, resp, kind):
        build = NOTIFICATIONS.get(kind)
        if build is None:
            raise falcon.HTTPNotFound(description=f"no notification named {kind[:40]!r}")
        body = await self.body(req)
        try:
            message = build(body)
        except messages.MessageError as ex:
            raise InputError(400, str(ex), ex.field) from None
        except TypeError:
            raise InputError(400, "missing required fields") from None
        channel = messages.DEFAULT_CHANNELS[message["type"]]
        delivered = await self.publish(protocol.TARGET_CHANNEL, message, channel)
        ok(resp, {"delivered": delivered, "type": message["type"], "channel": channel})


class Cleanup(_Resource):
    """POST /ws/cleanup: remove clients idle longer than ``timeout_minutes`` (default: the stale timeout)."""

    async def on_post(self, req, resp):
        body = await self.body(req)
        minutes = optional_number(body, "timeout_minutes")
        fields = {} if minutes is None else {"timeout_seconds": minutes * 60}
        reply = await self.hub.request(protocol.OP_CLEANUP, **fields)
        # removed_count: the seed implementation's name for it; removed: this bridge's, kept for its clients
        ok(resp, {"removed": reply["removed"], "removed_count": reply["removed"],
                  "removed_clients": reply["removed_clients"]})
