"""The protocol's schema: operations, their fields, the error codes, the checks of what a peer sent.

The other half of the protocol, the wire (frames, the codec, batches), is
services/wire.py; services/protocol.py is the one module the services import,
holding both. docs/PROTOCOL.md states the same rules in prose.
"""

import re

from services.endings import WIRE_ERRORS

# HTTP-level protocol versions a client may announce at handshake.
CLIENT_PROTOCOL_VERSION = "1.0"
SUPPORTED_CLIENT_MAJORS = (1,)

# ---------------------------------------------------------------- operations
OP_HANDSHAKE = "handshake"
OP_POLL = "poll"
OP_SEND = "send"
OP_DISCONNECT = "disconnect"
OP_CLIENTS = "clients"
OP_STATUS = "status"
OP_PUBLISH = "publish"
OP_CLEANUP = "cleanup"
OP_ACK = "ack"  # a WebSocket/SSE client confirms seqs (docs/TRANSPORTS.md)
OP_DETACH = "detach"  # a WebSocket/SSE connection ended
OP_METRICS = "metrics"  # counters and histograms for /metrics and the dashboard
OP_JOBS = "jobs"  # the latest state of each job (docs/DURABILITY.md)
OP_CREDIT = "credit"  # a WebSocket/SSE reader wrote messages out: the hub may push that many more
OP_CALL = "call"  # a backend asks a client to run a command and waits for its outcome (docs/BACKENDS.md)
OP_COMMAND = "command"  # one command's state, waiting for its end
OP_COMMANDS = "commands"  # pending and recent commands
# LrSocket push into the plug-in (docs/TRANSPORTS.md, services/hub/lrsocket.py)
OP_PUSH_ANNOUNCE = "push_announce"  # a session announces the port its LrSocket listens on
OP_PUSH_WAIT = "push_wait"  # the gateway sent the probe: answered when the plug-in acknowledges it
OP_PUSH_PROOF = "push_proof"  # the plug-in acknowledges the probe (over HTTP)
OP_PUSH_CHECK = "push_check"  # the plug-in's ack and light check: is the bridge still pushing?
# Ops that name a client: the hub's dispatch looks its session up (and checks its secret) once, for the handler.
CLIENT_OPS = frozenset((OP_POLL, OP_SEND, OP_DISCONNECT, OP_ACK, OP_DETACH, OP_CREDIT,
                        OP_PUSH_ANNOUNCE, OP_PUSH_WAIT, OP_PUSH_PROOF, OP_PUSH_CHECK))
# A poll and its stream: their replies come after every other reply (docs/PROTOCOL.md, rule 14a); every
# other op is control (handshake, send, publish, status, call...), answered first by the hub and the gateway.
POLL_OPS = frozenset((OP_POLL, OP_CREDIT, OP_DETACH))

# How a client reads its queue (shown in /ws/clients and /ws/status).
TRANSPORT_POLL = "poll"
TRANSPORT_WEBSOCKET = "websocket"
TRANSPORT_SSE = "sse"
TRANSPORT_LRSOCKET = "lrsocket"
TRANSPORTS = (TRANSPORT_POLL, TRANSPORT_WEBSOCKET, TRANSPORT_SSE, TRANSPORT_LRSOCKET)

# Publish targets: who receives a published message.
TARGET_ALL = "all"
TARGET_CHANNEL = "channel"
TARGET_CLIENT = "client"
TARGET_TYPE = "client_type"
TARGETS = (TARGET_ALL, TARGET_CHANNEL, TARGET_CLIENT, TARGET_TYPE)

# --------------------------------------------------------------- error codes


# The error codes a hub answers with, rows of the one catalogue of endings (services/endings.py): each
# with its HTTP status, WebSocket close code, SSE event, poll flag and what a client should do.
ERRORS = WIRE_ERRORS


class ProtocolError(Exception):
    """A message broke the protocol; ``code`` is a key of ``ERRORS``."""

    def __init__(self, code, reason, field=None, req_id=None, retry_after=None):
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.field = field
        self.req_id = req_id  # set once the request's id is known, so the error can be answered
        self.retry_after = retry_after  # seconds, for rate_limited


# ------------------------------------------------------------ field checking
_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,63}$")
_CHANNEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def valid_type(value):
    """True for a message type: a short identifier (letter first, <= 64 chars)."""
    return isinstance(value, str) and _IDENT.match(value) is not None


def valid_channel(value):
    """True for a channel name: letters, digits, ``_.:-``, <= 64 chars."""
    return isinstance(value, str) and _CHANNEL.match(value) is not None


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return (isinstance(value, (int, float))) and not isinstance(value, bool)


_CHECKS = {
    "str": (lambda v: isinstance(v, str), "a string"),
    "int": (_is_int, "an integer"),
    "number": (_is_number, "a number"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "map": (lambda v: isinstance(v, dict), "an object"),
    "channels": (
        lambda v: isinstance(v, list) and all(valid_channel(c) for c in v),
        "a list of channel names",
    ),
    "target": (lambda v: v in TARGETS, "one of " + ", ".join(TARGETS)),
    "seq": (lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
    "transport": (lambda v: v in TRANSPORTS, "one of " + ", ".join(TRANSPORTS)),
    "message": (lambda v: isinstance(v, dict) and valid_type(v.get("type")), "an object with a valid type"),
}

# op -> {field: (kind, required)}; unknown fields are ignored.
REQUEST_FIELDS = {
    OP_HANDSHAKE: {
        "client_type": ("str", True), "protocol_version": ("str", True), "peer": ("str", False),
        "client_id": ("str", False), "client_secret": ("str", False),  # resume that session
        "ephemeral": ("bool", False),  # removed when its stream ends (docs/TRANSPORTS.md)
    },
    OP_POLL: {
        "client_id": ("str", True), "wait": ("number", False), "ack": ("int", False),
        "after": ("seq", False), "reader": ("str", False), "transport": ("transport", False), "attach": ("bool", False),
        "client_secret": ("str", False),
        "window": ("seq", False), "window_bytes": ("seq", False),  # a stream: pushes up to this, see OP_CREDIT
        "json": ("bool", False),  # answer with "messages_json", one JSON array (a plain poll)
    },
    OP_SEND: {"client_id": ("str", True), "message": ("message", True), "client_secret": ("str", False)},
    OP_DISCONNECT: {"client_id": ("str", True), "client_secret": ("str", False)},
    OP_CLIENTS: {"after": ("str", False), "limit": ("seq", False)},  # a page (handlers.page)
    OP_STATUS: {},
    OP_PUBLISH: {"target": ("target", True), "to": ("str", False), "message": ("message", True)},
    OP_CLEANUP: {"timeout_seconds": ("number", False)},
    OP_ACK: {"client_id": ("str", True), "seq": ("seq", False), "client_secret": ("str", False)},
    OP_DETACH: {"client_id": ("str", True), "reader": ("str", True), "client_secret": ("str", False)},
    OP_METRICS: {},
    OP_JOBS: {"job_id": ("str", False)},
    OP_CREDIT: {
        "client_id": ("str", True), "reader": ("str", True), "window": ("seq", True), "window_bytes": ("seq", True),
        "client_secret": ("str", False),
    },
    OP_PUSH_ANNOUNCE: {"client_id": ("str", True), "client_secret": ("str", True), "port": ("int", True)},
    OP_PUSH_WAIT: {"client_id": ("str", True), "probe": ("str", True), "reader": ("str", True)},
    OP_PUSH_PROOF: {
        "client_id": ("str", True), "client_secret": ("str", True), "port": ("int", True), "probe": ("str", True),
    },
    OP_PUSH_CHECK: {"client_id": ("str", True), "client_secret": ("str", True), "seq": ("seq", False)},
    OP_CALL: {
        "command_id": ("str", True), "target": ("target", True), "to": ("str", True), "action": ("str", True),
        "within": ("number", True), "caller": ("str", False), "wait": ("number", False),
        "progress": ("bool", False),  # params: any value (a map, usually)
    },
    OP_COMMAND: {"command_id": ("str", True), "wait": ("number", False), "progress": ("bool", False)},
    OP_COMMANDS: {},
}


def check_fields(fields, spec, where):
    """Raise ``ProtocolError(bad_request)`` naming the first field that breaks ``spec``."""
    for name, (kind, required) in spec.items():
        if name not in fields or fields[name] is None:
            if required:
                raise ProtocolError("bad_request", f"{where}: missing field '{name}'", name)
            continue
        check, what = _CHECKS[kind]
        if not check(fields[name]):
            raise ProtocolError("bad_request", f"{where}: field '{name}' must be {what}", name)


def check_request(req):
    """Validate one request map: an integer ``id``, a known ``op`` and its fields."""
    if not isinstance(req, dict):
        raise ProtocolError("bad_protocol", "a request must be a msgpack map")
    if not _is_int(req.get("id")):
        raise ProtocolError("bad_protocol", "request field 'id' must be an integer", "id")
    op = req.get("op")
    spec = REQUEST_FIELDS.get(op) if isinstance(op, str) else None  # a map or list as op is unhashable
    try:
        if spec is None:
            raise ProtocolError("unknown_op", f"unknown op {str(op)[:40]!r}", "op")
        check_fields(req, spec, op)
    except ProtocolError as ex:
        ex.req_id = req["id"]
        raise
    return req


def check_reply(rep):
    """Validate one reply map (``ok`` tells success from failure; an unknown error code becomes ``internal``)."""
    if not isinstance(rep, dict):
        raise ProtocolError("bad_protocol", "a reply must be a msgpack map")
    if not _is_int(rep.get("id")) or not isinstance(rep.get("ok"), bool):
        raise ProtocolError("bad_protocol", "reply needs integer 'id' and boolean 'ok'")
    if not rep["ok"] and rep.get("code") not in ERRORS:
        rep["code"] = "internal"
    return rep


def publish_event(target, message, to=None):
    """The one shape of a "deliver this to clients" event (ingest, PUB/SUB, op publish)."""
    event = {"target": target, "message": message}
    if to is not None:
        event["to"] = to
    return event


def check_publish(event):
    """Validate a publish event's fields; raises ``ProtocolError``."""
    check_fields(event, REQUEST_FIELDS[OP_PUBLISH], "publish")
    if event["target"] != TARGET_ALL:
        to = event.get("to")
        if not isinstance(to, str) or not to:
            raise ProtocolError("bad_request", f"publish to {event['target']} needs field 'to'", "to")
        if event["target"] == TARGET_CHANNEL and not valid_channel(to):
            raise ProtocolError("bad_request", "publish: 'to' is not a valid channel name", "to")
    return event


def client_major(version):
    """The major number of an ``"N.M"`` client protocol version, or raise."""
    m = re.match(r"^(\d{1,4})(?:\.(\d{1,4}))?$", version or "")
    if not m:
        raise ProtocolError("bad_request", "protocol_version must look like '1.0'", "protocol_version")
    return int(m.group(1))


# ------------------------------------------------------ the numbered stream
# The notifier numbers every event it accepts: (epoch, seq), ``epoch`` naming
# one run of the notifier, ``seq`` counting from 1 within it. Its XPUB sends a
# fourth frame with the position of a message's first event (the others
# follow one by one), and its ROUTER at BRIDGE_NOTIFIER_RPC answers three ops
# (docs/PROTOCOL.md rules 23-31):
#
#     replay   hub -> notifier  [TAG, {op, id, epoch, after}]
#              reply            [TAG, {id, ok, epoch, known, head, lost, first?, upto, more}, events?]
#     publish  backend -> notifier [TAG, {op, id}, ingest payload]
#              reply            [TAG, {id, ok: true}]  (every id up to ``id`` is taken), or an error for one id
#     ping     backend -> notifier [TAG, {op, id}]  ->  [TAG, {id, ok: true, epoch}]
OP_REPLAY = "replay"
OP_PING = "ping"
MAX_EPOCH_CHARS = 64
MAX_LOST_RUNS = 1000  # lost entries in one replay reply

NOTIFIER_FIELDS = {
    OP_REPLAY: {"epoch": ("str", True), "after": ("seq", True)},
    OP_PUBLISH: {},
    OP_PING: {},
}


def check_position(obj, what="position"):
    """``(epoch, seq)`` from a map's ``epoch`` and ``seq`` fields; raises ``ProtocolError(bad_protocol)``."""
    epoch, seq = obj.get("epoch"), obj.get("seq")
    if not isinstance(epoch, str) or not 0 < len(epoch) <= MAX_EPOCH_CHARS:
        raise ProtocolError("bad_protocol", f"{what}: 'epoch' must be a string of 1 to {MAX_EPOCH_CHARS} chars",
                            "epoch")
    if not _is_int(seq) or not 0 <= seq < 2 ** 63:
        raise ProtocolError("bad_protocol", f"{what}: 'seq' must be a non-negative integer", "seq")
    return epoch, seq


def check_notifier_request(req, has_payload):
    """Validate one request to the notifier's ROUTER (``has_payload``: it came with a third frame)."""
    if not _is_int(req.get("id")):
        raise ProtocolError("bad_protocol", "request field 'id' must be an integer", "id")
    op = req.get("op")
    spec = NOTIFIER_FIELDS.get(op) if isinstance(op, str) else None
    try:
        if spec is None:
            raise ProtocolError("unknown_op", f"unknown op {str(op)[:40]!r}", "op")
        check_fields(req, spec, op)
        if (op == OP_PUBLISH) != has_payload:
            raise ProtocolError("bad_protocol", "publish, and only publish, carries a third frame (the event)")
    except ProtocolError as ex:
        ex.req_id = req["id"]
        raise
    return req


def check_replay(reply, has_events):
    """Validate a successful replay reply (``has_events``: events came with it); ``lost`` entries are
    ``[first, last, target, to]``."""
    check_position({"epoch": reply.get("epoch"), "seq": reply.get("head")}, "replay")
    if not isinstance(reply.get("known"), bool) or not isinstance(reply.get("more"), bool):
        raise ProtocolError("bad_protocol", "replay: 'known' and 'more' must be true or false")
    for name in ("after", "upto"):
        if not _is_int(reply.get(name)) or reply[name] < 0:
            raise ProtocolError("bad_protocol", f"replay: '{name}' must be a non-negative integer", name)
    lost = reply.get("lost")
    if not isinstance(lost, list) or len(lost) > MAX_LOST_RUNS:
        raise ProtocolError("bad_protocol", f"replay: 'lost' must be a list of at most {MAX_LOST_RUNS}", "lost")
    for item in lost:
        if not (isinstance(item, list) and len(item) == 4 and _is_int(item[0]) and _is_int(item[1])
                and 0 < item[0] <= item[1] and (item[2] is None or item[2] in TARGETS)
                and (item[3] is None or isinstance(item[3], str))):
            raise ProtocolError("bad_protocol", "replay: a 'lost' entry must be [first, last, target, to]", "lost")
    if has_events and (not _is_int(reply.get("first")) or reply["first"] < 1):
        raise ProtocolError("bad_protocol", "replay: events need 'first', a positive integer", "first")
    return reply
