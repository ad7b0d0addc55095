"""What the hub does for each request op, and for each built-in client message.

``dispatch(hub, ctx, req)`` runs ``HANDLERS[op]``: ``(hub, ctx, req)``, or for
an op that names a client (``protocol.CLIENT_OPS``) ``(hub, ctx, req,
session)`` with the session looked up (and its secret checked) once, here.
A handler returns the reply's fields, or ``None`` when the request was
parked (a long-poll) and will be answered later. Domain errors are raised as
``ProtocolError`` and turned into ``{ok: false, code}`` by the server's one
dispatch wrapper.
"""

import bisect

from services import protocol
from services.protocol import ProtocolError
from services.hub import commands, lrsocket, recovery
from services.hub.requests import PollRequest

# Client messages the hub answers itself; every other type is an application
# message, acknowledged and handed to backends on BRIDGE_CLIENT_EVENTS.
BUILTIN_TYPES = ("ping", "register", "subscribe", "unsubscribe", "command_result", "command_progress")


class Context:
    """Per-request facts the handlers need besides the hub: who asked, where to forward."""

    __slots__ = ("peer", "forward")

    def __init__(self, peer, forward):
        self.peer = peer
        self.forward = forward  # forward(event) -> None: client message out to backends


def handshake(hub, ctx, req):
    major = protocol.client_major(req["protocol_version"])
    if major not in protocol.SUPPORTED_CLIENT_MAJORS:
        supported = ", ".join(f"{m}.x" for m in protocol.SUPPORTED_CLIENT_MAJORS)
        raise ProtocolError(
            "unsupported_version",
            f"protocol_version {req['protocol_version']} is not supported; supported: {supported}",
            "protocol_version",
        )
    client_type = req["client_type"]
    if not protocol.valid_type(client_type):
        raise ProtocolError("bad_request", "client_type must be a short identifier", "client_type")
    hub.admission.handshake(req.get("peer") or "unknown")
    session = hub.resume(req.get("client_id"), req.get("client_secret"))  # docs/DURABILITY.md
    resumed = session is not None
    if not resumed:
        session = hub.create_session(client_type, ephemeral=bool(req.get("ephemeral")))
    return {
        "client_id": session.client_id,
        "client_secret": session.secret,
        "resumed": resumed,
        "protocol_version": protocol.CLIENT_PROTOCOL_VERSION,
        "server_time": hub.now_iso(),
    }


def dispatch(hub, ctx, req):
    """Run the handler for ``req``'s op, with the client's session when the op names one."""
    op = req["op"]
    if op in protocol.CLIENT_OPS:
        return HANDLERS[op](hub, ctx, req, hub.session(req["client_id"], req.get("client_secret")))
    return HANDLERS[op](hub, ctx, req)


def poll(hub, ctx, req, session):
    return hub.poll(session, PollRequest.of(ctx.peer, req))


def credit(hub, ctx, req, session):
    hub.credit(session, req["reader"], req["window"], req["window_bytes"])
    return {}


def ack(hub, ctx, req, session):
    hub.ack(session, req.get("seq"))
    return {"acked": session.acked, "next_seq": session.next_seq, "client_type": session.client_type}


def detach(hub, ctx, req, session):
    hub.detach(session, req["reader"])
    if session.ephemeral and session.reader is None:  # its one reader is gone: so is the session
        hub.drop_client(session, "its stream ended")
    return {}


def disconnect(hub, ctx, req, session):
    hub.drop_client(session, "disconnected")
    return {}


def page(keys, view, after=None, limit=None, max_bytes=protocol.POLL_REPLY_BYTES):
    """One page of a listing, in ``keys``' sorted order: ``(items, next)``.

    Items come after the cursor ``after`` (a key), at most ``limit`` of them,
    and no more than ``max_bytes`` packed (at least one), so the reply always
    fits the link (a listing of 10 000 clients is several MiB). ``next`` is the
    last key listed when more follow (pass it back as ``after``), else None.
    """
    keys = sorted(keys)
    start = 0 if after is None else bisect.bisect_right(keys, after)
    items, size = [], 0
    for key in keys[start:]:
        if limit is not None and len(items) >= limit:
            break
        item = view(key)
        size += protocol.packed_size(item)
        if items and size > max_bytes:
            break
        items.append(item)
    more = start + len(items) < len(keys)
    return items, (keys[start + len(items) - 1] if more and items else None)


def clients(hub, ctx, req):
    sessions = hub.sessions
    listed, cursor = page(sessions, lambda cid: hub.describe(sessions[cid]), req.get("after"), req.get("limit"))
    fields = {"clients": listed, "count": len(sessions)}
    if cursor is not None:
        fields["next"] = cursor
    return fields


def status(hub, ctx, req):
    return {"status": hub.status()}


def metrics(hub, ctx, req):
    return {"metrics": hub.metrics.snapshot(hub)}


def publish(hub, ctx, req):
    protocol.check_publish(req)
    return {"delivered": hub.publish(req["target"], req["message"], req.get("to"))}


def cleanup(hub, ctx, req):
    older_than = req.get("timeout_seconds")
    if older_than is None:
        older_than = hub.config.stale_seconds
    if older_than < 0:
        raise ProtocolError("bad_request", "timeout must not be negative", "timeout_seconds")
    removed = hub.remove_stale(older_than)
    return {"removed": len(removed), "removed_clients": removed}


def send(hub, ctx, req, session):
    hub.admission.send(session)
    hub.seen(session)
    message = req["message"]
    handler = CLIENT_MESSAGES.get(message["type"], application_message)
    return {"response": handler(hub, ctx, session, message)}


# ------------------------------------------------------- client messages
def _channels(message):
    channels = message.get("channels")
    if isinstance(channels, str):
        channels = [channels]
    if not isinstance(channels, list) or not channels:
        raise ProtocolError("bad_request", "message field 'channels' must be a non-empty list", "channels")
    for channel in channels:
        if not protocol.valid_channel(channel):
            raise ProtocolError("bad_request", f"invalid channel name {str(channel)[:70]!r}", "channels")
    return channels


def ping(hub, ctx, session, message):
    return {"type": "pong", "timestamp": hub.now_iso()}


def register(hub, ctx, session, message):
    client_type = message.get("client_type", session.client_type)
    client_name = message.get("client_name")
    if not protocol.valid_type(client_type):
        raise ProtocolError("bad_request", "client_type must be a short identifier", "client_type")
    if client_name is not None and (not isinstance(client_name, str) or len(client_name) > 200):
        raise ProtocolError("bad_request", "client_name must be a string of at most 200 characters", "client_name")
    hub.set_client_type(session, client_type)
    session.client_name = client_name
    hub.changes.meta_changed(session)
    for key in ("plugin_version", "version", "host"):
        if isinstance(message.get(key), str):
            session.info[key] = message[key][:100]
    return {
        "type": "registration_confirmed",
        "client_id": session.client_id,
        "client_type": session.client_type,
        "client_name": session.client_name,
        "timestamp": hub.now_iso(),
    }


def subscribe(hub, ctx, session, message):
    channels = _channels(message)
    per_subscribe = hub.config.max_channels_per_subscribe
    if len(channels) > per_subscribe:
        raise ProtocolError("bad_request", f"at most {per_subscribe} channels per subscribe", "channels")
    per_client = hub.config.max_channels_per_client
    if len(session.subscriptions | set(channels)) > per_client:
        raise ProtocolError("bad_request", f"at most {per_client} channels per client", "channels")
    positions = recovery.positions(message.get("recover"), channels)
    snapshot = recovery.wants_snapshot(message)
    added = [channel for channel in channels if channel not in session.subscriptions]
    hub.subscribe(session, channels)
    reply = {
        "type": "subscription_confirmed",
        "channels": channels,
        "subscriptions": sorted(session.subscriptions),
        "timestamp": hub.now_iso(),
    }
    reply.update(recovery.subscribed(hub, session, channels, positions, snapshot, added))
    return reply


def unsubscribe(hub, ctx, session, message):
    channels = _channels(message)
    hub.unsubscribe(session, channels)
    return {
        "type": "unsubscription_confirmed",
        "channels": channels,
        "subscriptions": sorted(session.subscriptions),
        "timestamp": hub.now_iso(),
    }


def application_message(hub, ctx, session, message):
    """Any other type: acknowledged, and handed to backends with the sender's identity."""
    timestamp = hub.now_iso()
    hub.stats["client_messages"] += 1
    ctx.forward({
        "client_id": session.client_id,
        "client_type": session.client_type,
        "client_name": session.client_name,
        "timestamp": timestamp,
        "message": message,
    })
    return {"type": "ack", "received_type": message["type"], "timestamp": timestamp}


CLIENT_MESSAGES = {
    "ping": ping,
    "register": register,
    "subscribe": subscribe,
    "unsubscribe": unsubscribe,
    "command_result": commands.client_result,
    "command_progress": commands.client_progress,
}

def jobs(hub, ctx, req):
    job_id = req.get("job_id")
    if job_id is not None:
        job = hub.jobs.get(job_id)
        if job is None:
            raise ProtocolError("unknown_job", f"unknown job {job_id[:80]!r}", "job_id")
        return {"job": job}
    listing, left_out = hub.jobs.listing(protocol.POLL_REPLY_BYTES)
    latest = hub.jobs.system_status
    fields = {"jobs": listing, "count": len(hub.jobs.jobs),
              "system_status": None if latest is None else latest.get("status")}
    if left_out:
        fields["left_out"] = left_out
    return fields


HANDLERS = {
    protocol.OP_HANDSHAKE: handshake,
    protocol.OP_POLL: poll,
    protocol.OP_SEND: send,
    protocol.OP_DISCONNECT: disconnect,
    protocol.OP_CLIENTS: clients,
    protocol.OP_STATUS: status,
    protocol.OP_PUBLISH: publish,
    protocol.OP_CLEANUP: cleanup,
    protocol.OP_ACK: ack,
    protocol.OP_DETACH: detach,
    protocol.OP_CREDIT: credit,
    protocol.OP_METRICS: metrics,
    protocol.OP_JOBS: jobs,
    **lrsocket.HANDLERS,
    protocol.OP_CALL: commands.call,
    protocol.OP_COMMAND: commands.command,
    protocol.OP_COMMANDS: commands.listing,
}
