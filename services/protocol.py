"""The one wire protocol between the bridge's processes.

Every message that crosses a ZeroMQ socket is built and read here; no other
module calls ``msgpack.packb``. docs/PROTOCOL.md states the same rules in
prose. Layouts:

Request/reply (gateway DEALER -> hub ROUTER)::

    request  [TAG, msgpack {op, id, ...fields}]
    reply    [TAG, msgpack {id, ok: true, ...fields}]
             [TAG, msgpack {id, ok: false, code, reason}]

Events (notifier PUB -> hub SUB, hub PUB -> backends SUB)::

    [topic, TAG, msgpack {...event}]

Ingest (backend PUSH -> notifier PULL)::

    [TAG, msgpack {...event}]

``TAG`` names the protocol and its version; a frame with another tag is
rejected with ``bad_protocol`` rather than misread.
"""

import re
import threading
from dataclasses import dataclass

import msgpack
import zmq

TAG = b"LRB/1"

# HTTP-level protocol versions a client may announce at handshake.
CLIENT_PROTOCOL_VERSION = "1.0"
SUPPORTED_CLIENT_MAJORS = (1,)

# Largest frame any bridge socket accepts (also set as ZMQ_MAXMSGSIZE). An event, a request or one
# queued message is at most this once encoded.
MAX_FRAME_BYTES = 4 * 1024 * 1024
# The one limit of the gateway-hub link for replies (rule 5a of docs/PROTOCOL.md): what a gateway's
# DEALER accepts and what the hub never exceeds. One queued message of the largest allowed size plus
# the envelope of the reply that carries it (id, ok, dropped, timestamp; seq and channel on the message).
REPLY_ENVELOPE_BYTES = 64 * 1024
MAX_REPLY_BYTES = MAX_FRAME_BYTES + REPLY_ENVELOPE_BYTES
# A poll answer (or a push to a stream) is cut once its messages add up to this; it always carries at
# least one message, so a message of any allowed size goes through, and says ``more`` when it was cut.
POLL_REPLY_BYTES = 1024 * 1024

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
# LrSocket push into the plug-in (docs/TRANSPORTS.md, services/hub/lrsocket.py)
OP_PUSH_ANNOUNCE = "push_announce"  # a session announces the port its LrSocket listens on
OP_PUSH_WAIT = "push_wait"  # the gateway sent the probe: answered when the plug-in acknowledges it
OP_PUSH_PROOF = "push_proof"  # the plug-in acknowledges the probe (over HTTP)
OP_PUSH_CHECK = "push_check"  # the plug-in's ack and light check: is the bridge still pushing?

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

# Event topics on PUB/SUB (prefix subscription works on these).
TOPIC_PUBLISH = b"publish"  # notifier -> hub: deliver to clients
TOPIC_CLIENT = b"client."  # hub -> backends: "client.<type>" sent by a client
TOPIC_HEARTBEAT = b"heartbeat"  # notifier -> hub: "I am alive" ({service}), for /ws/health

# --------------------------------------------------------------- error codes


@dataclass(frozen=True)
class ErrorCode:
    """One row of the error table: the HTTP status and what a client should do."""

    name: str
    http_status: int
    action: str  # "stop" (fix the request), "retry", "rehandshake"


ERRORS = {
    e.name: e
    for e in (
        ErrorCode("bad_request", 400, "stop"),
        ErrorCode("bad_protocol", 400, "stop"),
        ErrorCode("unsupported_version", 400, "stop"),
        ErrorCode("unknown_op", 400, "stop"),
        ErrorCode("unknown_client", 404, "rehandshake"),
        ErrorCode("unknown_job", 404, "stop"),
        ErrorCode("not_announced", 409, "stop"),  # an LrSocket probe ack without a current announcement
        ErrorCode("port_in_use", 409, "stop"),  # the bridge holds a connection to that port already
        ErrorCode("too_many_clients", 429, "retry"),
        ErrorCode("rate_limited", 429, "retry"),
        ErrorCode("hub_unavailable", 503, "retry"),
        ErrorCode("internal", 500, "retry"),
    )
}


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
    },
    OP_SEND: {"client_id": ("str", True), "message": ("message", True), "client_secret": ("str", False)},
    OP_DISCONNECT: {"client_id": ("str", True), "client_secret": ("str", False)},
    OP_CLIENTS: {},
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


# ------------------------------------------------------------------- codec
_packers = threading.local()


def _pack(obj):
    """``msgpack.packb`` with a reused packer (one per thread: backends may publish from several).

    ``packb`` builds a new packer, buffer included, for every call; reusing
    one costs a third as much, and a packer is left clean after a failure.
    """
    try:
        packer = _packers.packer
    except AttributeError:
        packer = _packers.packer = msgpack.Packer(use_bin_type=True)
    return packer.pack(obj)


def _unpack(data, batch=False):
    try:
        obj = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
        )
    except Exception as ex:  # msgpack raises several unrelated types
        raise ProtocolError("bad_protocol", f"undecodable msgpack: {type(ex).__name__}") from None
    if not isinstance(obj, dict) and not (batch and isinstance(obj, list)):
        raise ProtocolError("bad_protocol", "payload must be a msgpack map" + (" or an array of maps" if batch else ""))
    return obj


def _check_tag(tag):
    if tag != TAG:
        raise ProtocolError("bad_protocol", f"wrong protocol tag {bytes(tag)[:16]!r}, expected {TAG!r}")


_SNDMORE = int(zmq.SNDMORE)
_RCVMORE = int(zmq.RCVMORE)


def send_frames(sock, frames, flags=0):
    """``sock.send_multipart(frames, flags)``, at a third of its cost.

    The hub sends one message per answered poll and reads one per published
    event; pyzmq's multipart helpers spend more on checking frames and on
    flag enums than the sends themselves take.
    """
    flags = int(flags)
    more = flags | _SNDMORE
    send = sock.send
    last = len(frames) - 1
    for i, frame in enumerate(frames):
        send(frame, more if i < last else flags)


def recv_frames(sock, flags=0):
    """``sock.recv_multipart(flags)`` as a list of bytes, without its per-frame overhead.

    A ``Frame``'s ``more`` costs less than asking the socket for RCVMORE.
    """
    flags = int(flags)
    recv = sock.recv
    frame = recv(flags, copy=False)
    frames = [frame.bytes]
    while frame.more:
        frame = recv(flags, copy=False)
        frames.append(frame.bytes)
    return frames


def encode_request(op, req_id, **fields):
    """Frames for one request to the hub."""
    fields["op"] = op
    fields["id"] = req_id
    return [TAG, _pack(fields)]


def decode_request(frames):
    """Decode and validate a request's frames (without the ROUTER identity)."""
    if len(frames) != 2:
        raise ProtocolError("bad_protocol", f"request must have 2 frames, got {len(frames)}")
    _check_tag(frames[0])
    return check_request(_unpack(frames[1]))


# ---------------------------------------------------------------- batches
# A gateway worker sends all the requests of one event-loop tick as one
# message, and the hub answers a batching peer with all the replies of one
# loop turn as one message: a msgpack array of the same maps (docs/PROTOCOL.md).
# With 1 000 clients long-polling that is a few ZeroMQ messages per round
# instead of 2 000, each of which costs a wake-up of ZeroMQ's I/O thread.
MAX_BATCH = 10000  # requests in one batch
BATCH_BYTES = 1024 * 1024  # a batch is cut before it grows past this
# An item larger than BATCH_BYTES goes alone; a batch of smaller ones is at most BATCH_BYTES plus its
# 5-byte array head. So a batch is never larger than its largest item or BATCH_BYTES + 5, both within
# the limit the receiver sets (MAX_FRAME_BYTES for requests, MAX_REPLY_BYTES for replies).


def decode_requests(frames):
    """The request maps in one message, unchecked, and whether it was a batch.

    A map is one request; an array of maps is a batch. Check each item with
    ``check_request`` so a bad one is refused alone.
    """
    if len(frames) != 2:
        raise ProtocolError("bad_protocol", f"request must have 2 frames, got {len(frames)}")
    _check_tag(frames[0])
    return _maps(frames[1], "requests")


def _maps(payload, what):
    """``([map], False)`` for a map, ``(maps, True)`` for a batch of 1 to ``MAX_BATCH`` maps; else refused whole."""
    obj = _unpack(payload, batch=True)
    if isinstance(obj, dict):
        return [obj], False
    if not obj or len(obj) > MAX_BATCH:
        raise ProtocolError("bad_protocol", f"a batch holds 1 to {MAX_BATCH} {what}, got {len(obj)}")
    if not all(isinstance(item, dict) for item in obj):
        raise ProtocolError("bad_protocol", "a batch must be an array of msgpack maps")
    return obj, True


def pack_batch(payloads):
    """One msgpack array from already packed items (the bytes of each are kept as they are)."""
    n = len(payloads)
    if n < 16:
        head = bytes((0x90 | n,))
    elif n < 0x10000:
        head = b"\xdc" + n.to_bytes(2, "big")
    else:
        head = b"\xdd" + n.to_bytes(4, "big")
    return head + b"".join(payloads)


def payload_of(run):
    """The payload for a run of packed maps: the map itself when alone, else their batch."""
    return run[0] if len(run) == 1 else pack_batch(run)


def batches(items, limit=None, size_of=len, max_items=None):
    """Cut items into runs of at most ``limit`` bytes by ``size_of`` (an item larger than that goes alone)
    and at most ``max_items`` items (defaults: ``BATCH_BYTES`` and ``MAX_BATCH``)."""
    limit = BATCH_BYTES if limit is None else limit
    max_items = MAX_BATCH if max_items is None else max_items
    run, size = [], 0
    for item in items:
        n = size_of(item)
        if run and (size + n > limit or len(run) >= max_items):
            yield run
            run, size = [], 0
        run.append(item)
        size += n
    if run:
        yield run


def packed_size(obj):
    """How many bytes ``obj`` takes once encoded (what a reply spends on it)."""
    return len(_pack(obj))


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


def encode_reply(req_id, **fields):
    """Frames for a successful reply."""
    fields["id"] = req_id
    fields["ok"] = True
    return [TAG, _pack(fields)]


def encode_error(req_id, code, reason, field=None, retry_after=None):
    """Frames for a failed reply; ``code`` must be a key of ``ERRORS``; ``field`` names the culprit.

    ``retry_after`` (seconds) tells a rate-limited client when to try again.
    """
    if code not in ERRORS:
        code = "internal"
    reply = {"id": req_id, "ok": False, "code": code, "reason": reason}
    if field is not None:
        reply["field"] = field
    if retry_after is not None:
        reply["retry_after"] = retry_after
    return [TAG, _pack(reply)]


def decode_reply(frames):
    """Decode a reply; returns the map (``ok`` tells success from failure)."""
    if len(frames) != 2:
        raise ProtocolError("bad_protocol", f"reply must have 2 frames, got {len(frames)}")
    _check_tag(frames[0])
    return check_reply(_unpack(frames[1]))


def decode_replies(frames):
    """The replies in one message: one map, or a batch (an array of maps); each is checked."""
    if len(frames) != 2:
        raise ProtocolError("bad_protocol", f"reply must have 2 frames, got {len(frames)}")
    _check_tag(frames[0])
    obj = _unpack(frames[1], batch=True)
    if isinstance(obj, dict):
        return [check_reply(obj)]
    return [check_reply(rep) for rep in obj]


def check_reply(rep):
    """Validate one reply map (``ok`` tells success from failure; an unknown error code becomes ``internal``)."""
    if not isinstance(rep, dict):
        raise ProtocolError("bad_protocol", "a reply must be a msgpack map")
    if not _is_int(rep.get("id")) or not isinstance(rep.get("ok"), bool):
        raise ProtocolError("bad_protocol", "reply needs integer 'id' and boolean 'ok'")
    if not rep["ok"] and rep.get("code") not in ERRORS:
        rep["code"] = "internal"
    return rep


def encode_event(topic, event):
    """Frames for one PUB/SUB event; the topic leads so prefix filters work."""
    return [topic, TAG, _pack(event)]


def decode_event(frames):
    """Decode a PUB/SUB event; returns ``(topic, event_map)``."""
    if len(frames) != 3:
        raise ProtocolError("bad_protocol", f"event must have 3 frames, got {len(frames)}")
    _check_tag(frames[1])
    return bytes(frames[0]), _unpack(frames[2])


def decode_events(frames):
    """Decode a PUB/SUB message that holds one event or a batch; returns ``(topic, [event_map, ...])``.

    The notifier sends the events it has waiting as one message (an array of
    maps, rule 11 of docs/PROTOCOL.md); an array holding anything but maps is
    refused whole.
    """
    if len(frames) != 3:
        raise ProtocolError("bad_protocol", f"event must have 3 frames, got {len(frames)}")
    _check_tag(frames[1])
    return bytes(frames[0]), _maps(frames[2], "events")[0]


def encode_event_run(topic, payloads):
    """One PUB/SUB message for a run of packed events: the event itself, or a batch of them."""
    return [topic, TAG, payload_of(payloads)]


def encode_ingest(event):
    """Frames a backend PUSHes to the notifier."""
    return [TAG, _pack(event)]


def decode_ingest(frames):
    """Decode a backend's ingest frames into an event map."""
    if len(frames) != 2:
        raise ProtocolError("bad_protocol", f"ingest must have 2 frames, got {len(frames)}")
    _check_tag(frames[0])
    return _unpack(frames[1])


def encode_record(record):
    """Bytes for one record of the hub's store (a map, msgpack like the wire)."""
    return _pack(record)


def decode_record(data):
    """A record written by ``encode_record``."""
    return _unpack(data)


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


def encode_stream_run(topic, payloads, epoch, first):
    """A notifier's PUB/SUB message for events ``first``, ``first + 1``…: ``encode_event_run`` plus the position."""
    return [topic, TAG, payload_of(payloads), _pack({"epoch": epoch, "seq": first})]


def decode_stream(frames):
    """A PUB/SUB message from the notifier: ``(topic, [event_map, ...], (epoch, first seq) or None)``.

    Three frames are an unnumbered message (``decode_events``); a fourth
    carries the position of the first event.
    """
    if len(frames) == 4:
        topic, events = decode_events(frames[:3])
        return topic, events, check_position(_unpack(frames[3]), "stream position")
    topic, events = decode_events(frames)
    return topic, events, None


def encode_notifier_request(op, req_id, payload=None, **fields):
    """Frames for one request to the notifier's ROUTER; ``payload`` (an ingest map's bytes) for ``publish``."""
    fields["op"] = op
    fields["id"] = req_id
    frames = [TAG, _pack(fields)]
    if payload is not None:
        frames.append(payload)
    return frames


def decode_notifier_request(frames):
    """``(request map, payload or None)`` from a request's frames (without the ROUTER identity)."""
    if len(frames) not in (2, 3):
        raise ProtocolError("bad_protocol", f"a notifier request has 2 or 3 frames, got {len(frames)}")
    _check_tag(frames[0])
    req = _unpack(frames[1])
    if not _is_int(req.get("id")):
        raise ProtocolError("bad_protocol", "request field 'id' must be an integer", "id")
    op = req.get("op")
    spec = NOTIFIER_FIELDS.get(op) if isinstance(op, str) else None
    try:
        if spec is None:
            raise ProtocolError("unknown_op", f"unknown op {str(op)[:40]!r}", "op")
        check_fields(req, spec, op)
        if (op == OP_PUBLISH) != (len(frames) == 3):
            raise ProtocolError("bad_protocol", "publish, and only publish, carries a third frame (the event)")
    except ProtocolError as ex:
        ex.req_id = req["id"]
        raise
    return req, (frames[2] if len(frames) == 3 else None)


def encode_notifier_reply(req_id, payload=None, **fields):
    """Frames for the notifier's answer; ``payload`` holds a replay's events (a map or a batch)."""
    frames = encode_reply(req_id, **fields)
    if payload is not None:
        frames.append(payload)
    return frames


def decode_notifier_reply(frames):
    """``(reply map, payload or None)``: one reply from the notifier's ROUTER."""
    if len(frames) not in (2, 3):
        raise ProtocolError("bad_protocol", f"a notifier reply has 2 or 3 frames, got {len(frames)}")
    _check_tag(frames[0])
    return check_reply(_unpack(frames[1])), (frames[2] if len(frames) == 3 else None)


def decode_replay(frames):
    """A checked replay reply: ``(reply map, [event_map, ...])``; ``lost`` entries are ``[first, last, target, to]``."""
    reply, payload = decode_notifier_reply(frames)
    if not reply["ok"]:
        return reply, []
    epoch, head = check_position({"epoch": reply.get("epoch"), "seq": reply.get("head")}, "replay")
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
    events = []
    if payload is not None:
        if not _is_int(reply.get("first")) or reply["first"] < 1:
            raise ProtocolError("bad_protocol", "replay: events need 'first', a positive integer", "first")
        events = _maps(payload, "events")[0]
    return reply, events
