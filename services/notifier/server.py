"""The notifier's ZeroMQ loop: backend events in, publish events out to every hub.

- PULL at BRIDGE_EVENTS_IN (bind): backends PUSH ``[TAG, msgpack event]``.
  PUSH/PULL does not lose a short-lived publisher's event: the PUSH queues it
  on the connection and its linger flushes it before the process exits.
- XPUB at BRIDGE_EVENTS_OUT (bind): hubs SUB to ``publish``. The XPUB tells
  us when a hub's subscription arrives and when the last one goes; while no
  hub is subscribed, events wait in a bounded ``Outbox`` instead of being
  dropped (the "slow joiner"), and are sent as soon as one subscribes.
- PULL at an inproc address: the status sampler's thread, speaking ingest.
- ROUTER at BRIDGE_NOTIFIER_RPC (bind): hubs ask for events they missed
  (``replay``), backends publish with an acknowledgement (``publish``) or
  check the notifier is there (``ping``).

Every accepted event is numbered (this run's epoch, seq) and published with
its position; what was published stays in a bounded ``ReplayLog`` so a hub
that missed some (it restarted, or a pipe overflowed) gets them again, and
what can no longer be resent is reported as lost, with the target it had
(docs/PROTOCOL.md rules 23-31).

With BRIDGE_CURVE_DIR (required off loopback) the ingest and the XPUB are
CURVE servers with the hub's certificate, and a ZAP handler admits only the
clients in ``authorized/`` (``services.curve``); anyone else gets no
connection, so the loop never sees their events.

While a hub is subscribed, a ``heartbeat`` event goes out every
``HEARTBEAT_SECONDS`` (and at once when a hub subscribes), so the hub's
health report knows the notifier is alive even when no backend publishes.

One thread owns every socket; the sampler hands its samples over as messages.
"""

import itertools
import logging
import os
import time

import zmq

from services import curve, messages, protocol
from services.protocol import ProtocolError
from services.notifier.outbox import Outbox
from services.notifier.replay import ReplayLog
from services.notifier.sampler import Sampler

log = logging.getLogger(__name__)

DRAIN_BUDGET = 5000  # events read from one socket per loop turn
MAX_POLL_MS = 200  # the loop wakes at least this often to notice SIGTERM
RETRY_MS = 10  # how soon to retry when a hub's pipe is full
HEARTBEAT_SECONDS = 5.0
_inproc_ids = itertools.count()
_NOBLOCK = int(zmq.NOBLOCK)  # protocol's send/recv_frames: not pyzmq's multipart helpers, 3x their cost


class RejectLog:
    """Logs rejected events at most once a minute, counting every one."""

    def __init__(self, clock, interval=60.0):
        self.clock = clock
        self.interval = interval
        self.last = -1e9
        self.count = 0

    def reject(self, reason):
        self.count += 1
        now = self.clock()
        if now - self.last >= self.interval:
            self.last = now
            log.warning("rejected a backend event: %s (%d rejected in all)", reason, self.count)


def accept(frames):
    """Decode and check one ingest message; returns the publish event to forward.

    Application types (``job_progress``…) go through the same builders as the
    Python library, so a backend in any language gets the same checks.
    Raises ``ProtocolError`` or ``messages.MessageError``.
    """
    return _check(frames)[1]


def publish_frames(frames):
    """``accept``, as the frames to send to the hubs.

    When checking changed nothing (the usual case: the library sends events
    exactly as the check leaves them), the ingest payload goes on as it came,
    without encoding it again; it decodes to the same map.
    """
    payload, _ = checked_payload(frames)
    return [protocol.TOPIC_PUBLISH, protocol.TAG, payload]


def checked_payload(frames):
    """``accept``, as ``(the payload to publish, the publish event)``: the ingest payload itself when unchanged."""
    received, event = _check(frames)
    if received == event:
        return frames[1], event
    return protocol.encode_ingest(event)[1], event


def _check(frames):
    """``(the decoded ingest map, the publish event it becomes)``."""
    received = event = protocol.check_publish(protocol.decode_ingest(frames))
    message = event["message"]
    build = messages.BUILDERS.get(message["type"])
    if build is not None:
        try:
            message = build(**{k: v for k, v in message.items() if k != "type"})
        except TypeError as ex:  # a required field is missing, or a key is not a string
            raise messages.MessageError("message", f"does not fit {message['type']}: {ex}") from None
    else:
        messages.check_message(message)
    return received, protocol.publish_event(event["target"], message, event.get("to"))


class _Rejected(Exception):
    """An ingest event failed its checks (the cause, or None for an unexpected fault, is the argument)."""


class NotifierServer:
    """Binds the notifier's sockets and runs its loop until ``stop()``."""

    def __init__(self, config, context=None, clock=time.monotonic, sampler=True):
        self.config = config
        self.ctx = context or zmq.Context.instance()
        self.clock = clock
        self.stopping = False
        self.rejects = RejectLog(clock)
        self.outbox = Outbox(config.hold_size, config.hold_seconds, clock)  # (seq, payload) not yet published
        self.log = ReplayLog(config.replay_size, config.replay_bytes, config.replay_index)
        self.acks = {}  # backend peer -> the highest publish id taken this turn (one cumulative reply per turn)
        self.topics = set()  # subscriptions the XPUB has seen (first subscribe .. last unsubscribe)
        self.stats = {"received": 0, "rejected": 0, "forwarded": 0, "replay_requests": 0}
        self.next_heartbeat = clock()
        self.reported_overflow = 0
        self.overflow_logged = -1e9
        self.curve = curve.load(config.curve_dir) if config.curve_dir else None
        self.auth = curve.start_authenticator(self.ctx, self.curve) if self.curve else None
        self.ingest = self._socket(zmq.PULL)
        self.ingest.setsockopt(zmq.RCVHWM, config.ingest_hwm)
        self.out = self._socket(zmq.XPUB)
        self.out.setsockopt(zmq.XPUB_NODROP, 1)  # a full hub pipe says EAGAIN instead of dropping
        self.out.setsockopt(zmq.SNDHWM, 10000)
        self.rpc = self._socket(zmq.ROUTER)
        self.rpc.setsockopt(zmq.RCVHWM, config.ingest_hwm)
        self.rpc.setsockopt(zmq.SNDHWM, 100000)
        try:
            for sock, endpoint in ((self.ingest, config.events_in), (self.out, config.events_out),
                                   (self.rpc, config.rpc_endpoint)):
                if self.curve:
                    curve.serve(sock, self.curve)
                sock.bind(endpoint)
        except zmq.ZMQError:  # leave no ZAP handler behind in a shared context
            self.ingest.close()
            self.out.close()
            self.rpc.close()
            self._stop_auth()
            raise
        self.samples_endpoint = f"inproc://notifier-samples-{next(_inproc_ids)}"
        self.samples = self._socket(zmq.PULL)
        self.samples.setsockopt(zmq.RCVHWM, 1000)
        self.samples.bind(self.samples_endpoint)
        self.sampler = None
        if sampler and config.status_interval > 0:
            self.sampler = Sampler(config, self.ctx, self.samples_endpoint)

    def _socket(self, kind):
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, protocol.MAX_FRAME_BYTES)
        return sock

    @property
    def subscribed(self):
        """True while at least one hub listens to publish events."""
        return any(protocol.TOPIC_PUBLISH.startswith(t) for t in self.topics)

    # -------------------------------------------------------------- inputs
    def handle_ingest(self, frames):
        """One backend (or sampler) event: check it, number it, then send or hold it; returns its seq or None."""
        self.stats["received"] += 1
        try:
            payload, event = checked_payload(frames)
        except (ProtocolError, messages.MessageError) as ex:
            self.stats["rejected"] += 1
            self.rejects.reject(getattr(ex, "reason", None) or str(ex))
            raise _Rejected(ex) from None
        except Exception:  # one odd event must not stop the notifier
            self.stats["rejected"] += 1
            log.exception("could not check a backend event")
            raise _Rejected(None) from None
        seq = self.log.number(event["target"], event.get("to"))
        self.outbox.put((seq, payload))
        return seq

    def _ingest(self, frames):
        try:
            self.handle_ingest(frames)
        except _Rejected:
            pass

    def handle_rpc(self, frames):
        """One request on the ROUTER: a hub's ``replay``, a backend's ``publish`` or ``ping``."""
        peer = frames[0]
        try:
            req, payload = protocol.decode_notifier_request(frames[1:])
        except ProtocolError as ex:
            self.rejects.reject(ex.reason)
            if ex.req_id is not None:
                self._reply(peer, protocol.encode_error(ex.req_id, ex.code, ex.reason, ex.field))
            return
        op = req["op"]
        if op == protocol.OP_PUBLISH:
            try:
                self.handle_ingest([protocol.TAG, payload])
            except _Rejected as ex:
                cause = ex.args[0]
                self._reply(peer, protocol.encode_error(
                    req["id"], "bad_request", getattr(cause, "reason", None) or str(cause or "rejected"),
                    getattr(cause, "field", None)))
                return
            self.acks[peer] = req["id"]
        elif op == protocol.OP_PING:
            self._reply(peer, protocol.encode_reply(req["id"], epoch=self.log.epoch))
        else:
            self.stats["replay_requests"] += 1
            self._reply(peer, self._replay_frames(req))

    def _replay_frames(self, req):
        log_ = self.log
        if req["epoch"] != log_.epoch:  # a run that is gone: nothing of it can be resent or counted here
            return protocol.encode_notifier_reply(req["id"], epoch=log_.epoch, known=False, head=log_.head,
                                                  after=req["after"], upto=req["after"], lost=[], more=False)
        lost, first, payloads, upto = log_.replay(req["after"])
        fields = dict(epoch=log_.epoch, known=True, head=log_.head, after=req["after"], upto=upto, lost=lost,
                      more=upto < log_.head)
        if payloads:
            fields["first"] = first
        return protocol.encode_notifier_reply(req["id"], protocol.payload_of(payloads) if payloads else None, **fields)

    def _reply(self, peer, frames):
        try:
            protocol.send_frames(self.rpc, [peer, *frames], _NOBLOCK)
        except zmq.Again:  # that peer's pipe is full: it times out and asks again
            pass

    def _send_acks(self):
        acks, self.acks = self.acks, {}
        for peer, req_id in acks.items():
            self._reply(peer, protocol.encode_reply(req_id))

    def handle_subscription(self, frames):
        """XPUB reports ``\\x01topic`` when a first subscriber appears, ``\\x00topic`` when the last goes."""
        data = frames[0]
        if not data or data[0] not in (0, 1):
            return
        was = self.subscribed
        topic = bytes(data[1:])
        if data[0] == 1:
            self.topics.add(topic)
        else:
            self.topics.discard(topic)
        if self.subscribed != was:
            if was:
                log.info("no hub subscribed: holding events (at most %d, %g s)", self.outbox.limit, self.outbox.max_age)
            else:
                log.info("a hub subscribed: forwarding %d held events", len(self.outbox))
                self.next_heartbeat = self.clock()

    # ------------------------------------------------------------- output
    def _send(self, run):
        """One message to the hubs for a run of held events: the event, or a batch (docs/PROTOCOL.md rule 11)."""
        payloads = [held[1] for held in run]
        frames = protocol.encode_stream_run(protocol.TOPIC_PUBLISH, payloads, self.log.epoch, run[0][0])
        try:
            protocol.send_frames(self.out, frames, _NOBLOCK)
        except zmq.Again:
            return False
        self.log.published(run[0][0], payloads)
        self.stats["forwarded"] += len(run)
        return True

    def flush(self):
        """Send held events while a hub is subscribed and its pipe has room; heartbeat when due."""
        if self.outbox and self.subscribed:
            self.outbox.drain_runs(self._send)
        now = self.clock()
        if now >= self.next_heartbeat and self.subscribed:
            self.next_heartbeat = now + HEARTBEAT_SECONDS
            beat = {"service": "notifier", "pid": os.getpid(), "held": len(self.outbox),
                    "epoch": self.log.epoch, "seq": self.log.head}
            try:  # a heartbeat is never held: a late one would say nothing true
                self.out.send_multipart(protocol.encode_event(protocol.TOPIC_HEARTBEAT, beat), zmq.NOBLOCK)
            except zmq.Again:
                pass
        if self.outbox.expire():
            log.warning("dropped held events older than %g s (%d in all)", self.outbox.max_age, self.outbox.expired)
        if self.outbox.overflowed > self.reported_overflow and now - self.overflow_logged >= 60:
            self.overflow_logged = now
            self.reported_overflow = self.outbox.overflowed
            log.warning("the hold of %d events was full: %d oldest dropped in all", self.outbox.limit, self.outbox.overflowed)

    # ---------------------------------------------------------------- loop
    def _drain(self, sock, handler):
        for _ in range(DRAIN_BUDGET):
            try:
                frames = protocol.recv_frames(sock, _NOBLOCK)
            except zmq.Again:
                return
            handler(frames)

    def _timeout_ms(self):
        if self.outbox and self.subscribed:
            return RETRY_MS  # a hub's pipe was full: try again soon
        return MAX_POLL_MS

    def run_once(self, poller):
        """One loop turn: wait, read subscriptions and events, forward."""
        ready = dict(poller.poll(self._timeout_ms()))
        if self.out in ready:
            self._drain(self.out, self.handle_subscription)
        if self.ingest in ready:
            self._drain(self.ingest, self._ingest)
        if self.samples in ready:
            self._drain(self.samples, self._ingest)
        if self.rpc in ready:
            self._drain(self.rpc, self.handle_rpc)
        self.flush()
        if self.acks:  # after flush: an acknowledged event is in the hold or already published
            self._send_acks()

    def run(self):
        """Serve until ``stop()`` (or SIGTERM/SIGINT), then close."""
        poller = zmq.Poller()
        for sock in (self.out, self.ingest, self.samples, self.rpc):
            poller.register(sock, zmq.POLLIN)
        if self.sampler is not None:
            self.sampler.start()
        log.info(
            "notifier taking backend events at %s, publishing to hubs at %s, requests at %s (epoch %s),"
            " status every %s",
            self.config.events_in, self.config.events_out, self.config.rpc_endpoint, self.log.epoch,
            f"{self.config.status_interval:g} s" if self.sampler else "(off)",
        )
        try:
            while not self.stopping:
                self.run_once(poller)
        finally:
            self.close()

    def stop(self, *_):
        """Ask the loop to finish its turn and exit."""
        self.stopping = True

    def close(self):
        """Stop the sampler, give held events a last chance, close every socket."""
        if self.sampler is not None:
            self.sampler.stop()
        self.flush()
        self._send_acks()
        log.info(
            "notifier stopped: %d received, %d rejected, %d forwarded, %d left held, %d dropped when full, %d expired,"
            " %d replayed to hubs (last seq %d of epoch %s)",
            self.stats["received"], self.stats["rejected"], self.stats["forwarded"], len(self.outbox),
            self.outbox.overflowed, self.outbox.expired, self.log.replayed, self.log.head, self.log.epoch,
        )
        for sock in (self.ingest, self.samples):
            sock.close()
        self.rpc.setsockopt(zmq.LINGER, 200)
        self.rpc.close()
        self.out.setsockopt(zmq.LINGER, 500)
        self.out.close()
        self._stop_auth()

    def _stop_auth(self):
        if self.auth is not None:
            self.auth.stop()
            self.auth = None
