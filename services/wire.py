"""The protocol's wire: frames, the codec and batches between the bridge's processes.

Every message that crosses a ZeroMQ socket is built and read here; no other
module calls ``msgpack.packb``. Each ``decode_*`` checks its frames in one
place (``_frames``: how many, and the tag) and its maps with the schema
(services/schema.py). services/protocol.py is the one module the services
import, holding both halves. docs/PROTOCOL.md states the same rules in
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

import threading

import msgpack
import zmq

from services.schema import (
    ERRORS, ProtocolError, check_notifier_request, check_position, check_replay, check_reply, check_request,
)

TAG = b"LRB/1"

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

# Event topics on PUB/SUB (prefix subscription works on these).
TOPIC_PUBLISH = b"publish"  # notifier -> hub: deliver to clients
TOPIC_CLIENT = b"client."  # hub -> backends: "client.<type>" sent by a client
TOPIC_HEARTBEAT = b"heartbeat"  # notifier -> hub: "I am alive" ({service}), for /ws/health

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


def _frames(frames, counts, what, tag_at=0):
    """The one frame check: ``frames`` number one of ``counts`` and carry ``TAG`` at ``tag_at``; else
    ``ProtocolError(bad_protocol)``."""
    if len(frames) not in counts:
        expected = " or ".join(map(str, counts))
        raise ProtocolError("bad_protocol", f"{what} must have {expected} frames, got {len(frames)}")
    tag = frames[tag_at]
    if tag != TAG:
        raise ProtocolError("bad_protocol", f"wrong protocol tag {bytes(tag)[:16]!r}, expected {TAG!r}")
    return frames


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
    return check_request(_unpack(_frames(frames, (2,), "a request")[1]))


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
    return _maps(_frames(frames, (2,), "a request")[1], "requests")


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
    return check_reply(_unpack(_frames(frames, (2,), "a reply")[1]))


def decode_replies(frames):
    """The replies in one message: one map, or a batch (an array of maps); each is checked."""
    obj = _unpack(_frames(frames, (2,), "a reply")[1], batch=True)
    if isinstance(obj, dict):
        return [check_reply(obj)]
    return [check_reply(rep) for rep in obj]


def encode_event(topic, event):
    """Frames for one PUB/SUB event; the topic leads so prefix filters work."""
    return [topic, TAG, _pack(event)]


def decode_event(frames):
    """Decode a PUB/SUB event; returns ``(topic, event_map)``."""
    _frames(frames, (3,), "an event", tag_at=1)
    return bytes(frames[0]), _unpack(frames[2])


def decode_events(frames):
    """Decode a PUB/SUB message that holds one event or a batch; returns ``(topic, [event_map, ...])``.

    The notifier sends the events it has waiting as one message (an array of
    maps, rule 11 of docs/PROTOCOL.md); an array holding anything but maps is
    refused whole.
    """
    _frames(frames, (3,), "an event", tag_at=1)
    return bytes(frames[0]), _maps(frames[2], "events")[0]


def encode_event_run(topic, payloads):
    """One PUB/SUB message for a run of packed events: the event itself, or a batch of them."""
    return [topic, TAG, payload_of(payloads)]


def encode_ingest(event):
    """Frames a backend PUSHes to the notifier."""
    return [TAG, _pack(event)]


def decode_ingest(frames):
    """Decode a backend's ingest frames into an event map."""
    return _unpack(_frames(frames, (2,), "an ingest")[1])


def encode_record(record):
    """Bytes for one record of the hub's store (a map, msgpack like the wire)."""
    return _pack(record)


def decode_record(data):
    """A record written by ``encode_record``."""
    return _unpack(data)


def encode_run_record(parts):
    """``encode_record({"m": messages})`` from each message's own ``encode_record`` bytes (``parts``), the
    same bytes without encoding any message again."""
    return b"\x81\xa1m" + pack_batch(parts)


# ------------------------------------------------------ the numbered stream
# The frames of the notifier's numbered stream and of its ROUTER's three ops (services/schema.py has
# their fields and docs/PROTOCOL.md rules 23-31 the rules).
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
    _frames(frames, (2, 3), "a notifier request")
    payload = frames[2] if len(frames) == 3 else None
    return check_notifier_request(_unpack(frames[1]), payload is not None), payload


def encode_notifier_reply(req_id, payload=None, **fields):
    """Frames for the notifier's answer; ``payload`` holds a replay's events (a map or a batch)."""
    frames = encode_reply(req_id, **fields)
    if payload is not None:
        frames.append(payload)
    return frames


def decode_notifier_reply(frames):
    """``(reply map, payload or None)``: one reply from the notifier's ROUTER."""
    _frames(frames, (2, 3), "a notifier reply")
    return check_reply(_unpack(frames[1])), (frames[2] if len(frames) == 3 else None)


def decode_replay(frames):
    """A checked replay reply: ``(reply map, [event_map, ...])``; ``lost`` entries are ``[first, last, target, to]``."""
    reply, payload = decode_notifier_reply(frames)
    if not reply["ok"]:
        return reply, []
    check_replay(reply, payload is not None)
    return reply, ([] if payload is None else _maps(payload, "events")[0])
