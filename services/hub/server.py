"""The hub's ZeroMQ loop: one thread, three sockets, timers on the same loop.

- ROUTER at BRIDGE_HUB_RPC (bind): gateway requests, answered by request id.
- SUB to BRIDGE_EVENTS_OUT (connect): publish events from the notifier (a CURVE client with BRIDGE_CURVE_DIR).
- PUB at BRIDGE_CLIENT_EVENTS (bind): what clients send, for backends.
- DEALER to BRIDGE_NOTIFIER_RPC (connect): asks the notifier to resend what the hub missed
  of its numbered stream (services/hub/stream.py, docs/PROTOCOL.md rules 23-31).
"""

import gc
import logging
import time

import zmq

from services import curve, protocol
from services.protocol import ProtocolError
from services.hub.handlers import Context, dispatch
from services.hub.hub import Hub
from services.hub.store import open_store
from services.hub.stream import StreamTracker
from services.hub.changes import Changes

log = logging.getLogger(__name__)

DRAIN_BUDGET = 5000  # requests or events read from one socket per loop turn before flushing (a batch counts as what it holds)
MAX_POLL_MS = 200  # the loop wakes at least this often to notice SIGTERM
# A turn that only read events (no reply waits on it) leaves its changes to the next commit for at most this
# long: a flood then costs one store commit per poll answer instead of one per turn. What a crash loses of
# them, the notifier sends again (its stream position is written in the same commit, docs/DURABILITY.md).
INGEST_COMMIT_SECONDS = 0.05
# The hub keeps every queued message (a dict and a tuple or two each) for as long as it is queued, and makes
# almost no cyclic garbage; at Python's default of 700 allocations per young collection, the collector spent
# about a tenth of the hub's time re-examining queued messages during a flood.
GC_YOUNG_THRESHOLD = 10000
MAX_BATCHING_PEERS = 1024  # peers known to take batched replies (one per gateway worker connection)


class _RateLimitedLog:
    """Logs bad traffic once per peer per minute, counting the rest."""

    def __init__(self, clock, interval=60.0):
        self.clock = clock
        self.interval = interval
        self.last = {}
        self.count = 0

    def warn(self, peer, what):
        self.count += 1
        now = self.clock()
        key = bytes(peer)[:64]
        if now - self.last.get(key, -1e9) >= self.interval:
            if len(self.last) > 10000:
                self.last.clear()
            self.last[key] = now
            log.warning("rejected from peer %s: %s (%d rejected in all)", key.hex()[:16] or "-", what, self.count)


class HubServer:
    """Binds the hub's sockets and runs its loop until ``stop()``."""

    def __init__(self, config, context=None, clock=time.monotonic):
        self.config = config
        self.ctx = context or zmq.Context.instance()
        self.clock = clock
        self.held = []  # (peer, packed reply) of control requests waiting for this turn's commit
        self.held_polls = []  # the same for poll answers and pushes: sent after the control replies
        self.leftover = None  # (events, offset, position) of a publish batch whose tail waits for the next ingest
        self.batching = set()  # peers that sent a batch, so take batched replies
        self.store_failed_at = -1e9
        self.committed_at = -1e9  # when the last turn's changes were written
        self.store = store = open_store(config.store, config.store_sync)
        # The turn's change set: the hub's state records into it, the store writes it (services/hub/changes.py).
        self.changes = Changes(clock)
        self.hub = Hub(config, self._send_reply, clock=clock, store=store, changes=self.changes)
        self.hub.stream = self.stream = StreamTracker(clock, changes=self.changes)
        self.hub.restore(store.load())
        self.stopping = False
        self.bad = _RateLimitedLog(clock)
        # CURVE (docs/SECURITY.md): required by the config for a bind off loopback, optional on it.
        self.curve = curve.load(config.curve_dir) if config.curve_dir else None
        self.auth = curve.start_authenticator(self.ctx, self.curve) if self.curve else None
        self.rpc = self._socket(zmq.ROUTER)
        if self.curve:
            curve.serve(self.rpc, self.curve)
        self.rpc.bind(config.rpc_endpoint)
        self.events = self._socket(zmq.SUB)
        self.events.setsockopt(zmq.SUBSCRIBE, protocol.TOPIC_PUBLISH)
        self.events.setsockopt(zmq.SUBSCRIBE, protocol.TOPIC_HEARTBEAT)
        if self.curve:  # the notifier's XPUB is a CURVE server with the same keys
            curve.connect_as_client(self.events, self.curve)
        self.events.connect(config.events_endpoint)
        self.client_events = self._socket(zmq.PUB)
        if self.curve:
            curve.serve(self.client_events, self.curve)
        self.client_events.bind(config.client_events_endpoint)
        self.replay = self._socket(zmq.DEALER)
        self.replay.setsockopt(zmq.IMMEDIATE, 1)  # a request is sent to a connected notifier or not at all
        if self.curve:  # the notifier's ROUTER is a CURVE server with the same keys
            curve.connect_as_client(self.replay, self.curve)
        self.replay.connect(config.notifier_rpc_endpoint)
        self.request_ctx = Context(None, self._forward)
        sweep = config.stale_seconds / 4
        self.sweep_interval = max(0.05, min(sweep, 10.0))
        self.next_sweep = clock() + self.sweep_interval

    def _socket(self, kind):
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, protocol.MAX_FRAME_BYTES)
        sock.setsockopt(zmq.SNDHWM, 100000)
        sock.setsockopt(zmq.RCVHWM, 100000)
        return sock

    # ------------------------------------------------------------- replies
    # Replies are held until the turn's changes are committed to the store, so a
    # gateway is never told "done" about something a crash could still undo.
    def _send_reply(self, peer, req_id, fields, poll=None):
        """Hold a reply for the turn's commit: a poll answer (``poll``, or fields with ``messages`` when the
        hub answers a parked poll or pushes to a stream) in the poll tier, any other in the control tier."""
        payload = protocol.encode_reply(req_id, **fields)[1]
        if len(payload) > protocol.MAX_REPLY_BYTES:
            # The gateway would drop it and its link with it: say so instead (poll answers are cut well below).
            self.hub.metrics.error("reply_too_large")
            log.error("reply of %d bytes to request %s is larger than the link allows; answered with an error",
                      len(payload), req_id)
            payload = protocol.encode_error(req_id, "internal", "the reply is larger than the hub may send")[1]
        if poll is None:
            poll = "messages" in fields or "messages_json" in fields
        (self.held_polls if poll else self.held).append((peer, payload))

    def _send_error(self, peer, req_id, code, reason, field=None, retry_after=None, poll=False):
        (self.held_polls if poll else self.held).append(
            (peer, protocol.encode_error(req_id, code, reason, field, retry_after)[1]))

    def _release(self, polls=True, force=False):
        """Commit the turn's changes, then send the replies held during it: control replies first, then
        (unless ``polls`` is false) poll answers.

        A peer that batches its requests gets the turn's replies to it as one
        message per tier (or a few, each under ``protocol.BATCH_BYTES`` unless
        one reply alone is larger), its control replies before its poll
        answers; any other peer gets one message per reply, in the same
        order. No message is larger than ``protocol.MAX_REPLY_BYTES``, what a
        gateway accepts.
        """
        now = self.clock()
        if not (force or self.held or (polls and self.held_polls) or now - self.committed_at >= INGEST_COMMIT_SECONDS):
            return  # a turn that only read events: its changes go with the next reply's commit (or soon after)
        self.committed_at = now
        try:
            self.store.commit(self.changes)
        except Exception:
            if now - self.store_failed_at >= 60.0:
                self.store_failed_at = now
                log.exception("store commit failed; the changes are retried next turn, replies go out now")
        held, self.held = self.held, []
        if held:
            self._send_held(held)
        if polls and self.held_polls:
            held, self.held_polls = self.held_polls, []
            self._send_held(held)

    def _send_held(self, held):
        by_peer = {}
        for peer, payload in held:
            by_peer.setdefault(peer, []).append(payload)
        for peer, payloads in by_peer.items():
            if peer in self.batching:
                messages = [protocol.payload_of(run) for run in protocol.batches(payloads, protocol.BATCH_BYTES)]
            else:
                messages = payloads
            for payload in messages:
                try:
                    protocol.send_frames(self.rpc, (peer, protocol.TAG, payload), zmq.NOBLOCK)
                except zmq.Again:
                    self.hub.metrics.error("reply_dropped")
                    log.warning("reply to a gateway dropped: its pipe is full")

    def _forward(self, event):
        topic = protocol.TOPIC_CLIENT + event["message"]["type"].encode()
        protocol.send_frames(self.client_events, protocol.encode_event(topic, event))

    # ------------------------------------------------------------ dispatch
    def handle_request(self, frames):
        """The one dispatch wrapper: decode, run the handler, turn errors into codes; returns the requests read."""
        peer = frames[0]
        reqs = self._read_requests(frames)
        for req in reqs:
            self._dispatch(peer, req)
        return len(reqs)

    def _read_requests(self, frames):
        """The checked requests of one message (one, or a batch). One that fails its check is counted and
        logged; in its place, when it has an id to answer, is the ``ProtocolError`` that ``_dispatch``
        answers, in its turn."""
        peer = frames[0]
        try:
            items, batch = protocol.decode_requests(frames[1:])
        except ProtocolError as ex:
            self.hub.metrics.error("bad_request_frame")
            self.bad.warn(peer, ex.reason)
            return []
        except Exception:  # a decoder bug must not end the hub: drop the frame, say so once
            log.exception("undecodable request dropped")
            self.hub.metrics.error("bad_request_frame")
            return []
        if batch and peer not in self.batching:
            if len(self.batching) >= MAX_BATCHING_PEERS:  # reconnected gateways leave old identities behind
                self.batching.clear()
            self.batching.add(peer)
        reqs = []
        for item in items:
            try:
                reqs.append(protocol.check_request(item))
            except ProtocolError as ex:
                self.hub.metrics.error("bad_request_frame")
                self.bad.warn(peer, ex.reason)
                if ex.req_id is not None:
                    reqs.append(ex)
            except Exception:
                log.exception("undecodable request dropped")
                self.hub.metrics.error("bad_request_frame")
        return reqs

    def _drain_requests(self):
        """Read the requests waiting (up to ``DRAIN_BUDGET``); handle the control ones first and send their
        replies, then the rest in the order they came.

        A gateway sends a round of a thousand polls as one batch, which takes
        the hub tens of milliseconds and a commit of a thousand sessions; a
        control request read with it no longer waits for them. What may go
        first: a control request (not ``POLL_OPS``) of a client that no
        earlier request from the same peer and still waiting names, or of no
        client at all (status, broadcast, a handshake). So each client's
        requests keep their order (docs/PROTOCOL.md rule 14b), and a poll's
        ``ack`` is still applied before that client's next ``ack`` or ``send``.
        """
        read = []

        def collect(frames):
            reqs = self._read_requests(frames)
            read.append((frames[0], reqs))
            return len(reqs)

        self._drain(self.rpc, collect)
        later = []
        waiting = {}  # peer -> client ids with a request left in order
        poll_ops = protocol.POLL_OPS
        for peer, reqs in read:
            names = waiting.get(peer)
            if names is None:
                names = waiting[peer] = set()
            for req in reqs:
                if type(req) is ProtocolError:  # its error reply, in order with the control replies
                    self._dispatch(peer, req)
                    continue
                client_id = req.get("client_id")
                if req["op"] in poll_ops or client_id in names:
                    later.append((peer, req))
                    if client_id is not None:
                        names.add(client_id)
                else:
                    self._dispatch(peer, req)
        if self.held:
            self._release(polls=False)
        for peer, req in later:
            self._dispatch(peer, req)

    def _dispatch(self, peer, req):
        """Run one checked request's handler; a refusal or a failure becomes an error reply."""
        if type(req) is ProtocolError:
            self._send_error(peer, req.req_id, req.code, req.reason, req.field)
            return
        self.request_ctx.peer = peer
        poll = req["op"] in protocol.POLL_OPS  # its reply goes in the poll tier
        started = time.perf_counter()
        try:
            fields = dispatch(self.hub, self.request_ctx, req)
        except ProtocolError as ex:
            log.debug("%s refused: %s", req["op"], ex.reason)
            self._send_error(peer, req["id"], ex.code, ex.reason, ex.field, ex.retry_after, poll)
            return
        except Exception:
            log.exception("op %s failed", req["op"])
            self._send_error(peer, req["id"], "internal", "internal error in the hub", poll=poll)
            return
        finally:
            self.hub.metrics.request(req["op"], time.perf_counter() - started)
        if fields is not None:
            self._send_reply(peer, req["id"], fields, poll)

    def handle_event(self, frames):
        """Publish events from the notifier (one, or a batch): route each to the clients it names; returns how many.

        A numbered message (docs/PROTOCOL.md rule 24) is applied only where it
        follows on from the hub's position in that notifier run; a gap is
        left to the replay, which brings the events again in order.
        """
        try:
            topic, events, position = protocol.decode_stream(frames)
        except ProtocolError as ex:
            self.hub.metrics.error("bad_event_frame")
            self.bad.warn(b"events", ex.reason)
            return 1
        metrics = self.hub.metrics
        for _ in events:
            metrics.event()
        if topic == protocol.TOPIC_HEARTBEAT:
            beat = events[0]
            if "epoch" in beat:
                try:
                    self.stream.heartbeat(*protocol.check_position(beat, "heartbeat"))
                except ProtocolError as ex:
                    metrics.error("bad_event_frame")
                    self.bad.warn(b"events", ex.reason)
            return len(events)
        return self._apply_publish(events, 0, position)

    def _apply_publish(self, batch, offset, position):
        """Apply ``BRIDGE_INGEST_SLICE`` events of a publish batch from ``offset``; returns how many it took.

        The tail waits in ``leftover`` and is applied first in the next
        ingest: the stream position only ever moves past events applied, so
        a hub stopped with a tail waiting has it replayed.
        """
        end = offset + self.config.ingest_slice
        if end < len(batch):
            self.leftover = (batch, end, position)
            events = batch[offset:end]
        else:
            events = batch[offset:] if offset else batch
        if position is not None:
            position = (position[0], position[1] + offset)
            start = self.stream.live(position[0], position[1], len(events))
            if start is None:
                return len(events)
            self.apply_events(events[start:] if start else events)
        else:
            self.apply_events(events)
        return len(events)

    def apply_events(self, events):
        """Route publish events to the clients they name, in order (a bad one is counted and skipped)."""
        metrics = self.hub.metrics
        publish = self.hub.publish
        for event in events:
            try:
                protocol.check_publish(event)
            except ProtocolError as ex:
                metrics.error("bad_event_frame")
                self.bad.warn(b"events", ex.reason)
                continue
            try:
                publish(event["target"], event["message"], event.get("to"))
            except ProtocolError:
                self.hub.stats["undeliverable"] += 1
            except Exception:
                log.exception("publish event failed")

    # -------------------------------------------------------------- replay
    def request_replay(self):
        """Ask the notifier for what the hub missed, when the stream tracker wants it and none is in flight."""
        req = self.stream.next_request()
        if req is None:
            return
        frames = protocol.encode_notifier_request(protocol.OP_REPLAY, req.req_id, epoch=req.epoch, after=req.after)
        try:
            protocol.send_frames(self.replay, frames, zmq.NOBLOCK)
        except zmq.Again:
            self.stream.not_sent()

    def handle_replay(self, frames):
        """The notifier's answer to a replay request: count what is lost, apply what came, ask for more."""
        try:
            reply, events = protocol.decode_replay(frames)
        except ProtocolError as ex:
            self.hub.metrics.error("bad_event_frame")
            self.bad.warn(b"replay", ex.reason)
            return 1
        if not reply["ok"]:
            log.warning("the notifier refused a replay request: %s", reply.get("reason"))
            return 1
        lost, start = self.stream.replied(reply, events)
        for target, to, count in lost:
            self.hub.count_lost(target, to, count)
        if lost:
            log.warning("%d events from the notifier could not be resent: counted as dropped to their clients",
                        sum(count for _, _, count in lost))
        if start is not None:
            self.apply_events(events[start:] if start else events)
        self.request_replay()
        return max(1, len(events))

    # ---------------------------------------------------------------- loop
    def _drain(self, sock, handler):
        """Read and handle messages until none wait or ``DRAIN_BUDGET`` requests or events were handled.

        A batch counts as what it holds, so one turn's work stays bounded
        however the messages were packed.
        """
        budget = DRAIN_BUDGET
        while budget > 0:
            try:
                frames = protocol.recv_frames(sock, zmq.NOBLOCK)
            except zmq.Again:
                return
            budget -= handler(frames) or 1

    def _ingest(self, sock, handler):
        """Read events like ``_drain``, but give the turn up to delivery once it waits.

        Every ``BRIDGE_INGEST_SLICE`` events the ingest looks up: it stops
        if a request waits on the ROUTER (a poll that would take what is
        queued, or a control request) or a poll answer is held (reading on
        would only delay it: the answer, its commit and its sending come
        first), or, once it has read what one poll answer can carry (the
        smaller of ``BRIDGE_POLL_BATCH`` and ``BRIDGE_QUEUE_SIZE``: reading
        more cannot make a waiting answer larger, only older or lost), if a
        parked poll has something to deliver. What is left is read next turn
        (ZeroMQ and the notifier hold it, within their bounds; what they
        cannot hold is counted, docs/DURABILITY.md). With nobody waiting, the
        turn reads up to ``DRAIN_BUDGET`` as before.
        """
        budget = DRAIN_BUDGET
        step = self.config.ingest_slice
        share = min(self.config.poll_batch, self.config.queue_size)
        left = step
        read_all = 0
        hub, rpc = self.hub, self.rpc
        while budget > 0:
            if self.leftover is not None and sock is self.events:
                (batch, offset, position), self.leftover = self.leftover, None
                read = self._apply_publish(batch, offset, position)
            else:
                try:
                    frames = protocol.recv_frames(sock, zmq.NOBLOCK)
                except zmq.Again:
                    return
                read = handler(frames) or 1
            budget -= read
            left -= read
            read_all += read
            if left <= 0:
                if self.held_polls or rpc.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                    return
                if read_all >= share and hub.ready:
                    return
                left = step

    def _timeout_ms(self):
        if self.leftover is not None:
            return 0
        now = self.clock()
        wake = self.next_sweep
        if self.changes:  # a turn's changes wait unwritten: write them when their time is up
            wake = min(wake, self.committed_at + INGEST_COMMIT_SECONDS)
        deadline = self.hub.next_deadline()
        if deadline is not None and deadline < wake:
            wake = deadline
        replay = self.stream.next_wake()
        if replay is not None and replay < wake:
            wake = replay
        return max(0, min(MAX_POLL_MS, int((wake - now) * 1000) + 1))

    def run_once(self, poller):
        """One loop turn: wait, drain requests (their control replies sent at once), ingest events within
        their share, deliver, run due timers, send the poll answers."""
        timeout = self._timeout_ms()
        if timeout and self.store.idle_due():
            ready = dict(poller.poll(0))
            if not ready:  # nothing waits: the store's housekeeping now, not in a busy turn
                self.store.idle()
                ready = dict(poller.poll(self._timeout_ms()))
        else:
            ready = dict(poller.poll(timeout))
        if self.rpc in ready:
            self._drain_requests()
            if self.held:  # control replies go out now, ahead of this turn's ingest and poll answers
                self._release(polls=False)
        if self.events in ready or self.leftover is not None:
            self._ingest(self.events, self.handle_event)
        if self.replay in ready:
            self._ingest(self.replay, self.handle_replay)
        self.request_replay()
        self.hub.flush()
        self.hub.expire()
        now = self.clock()
        if now >= self.next_sweep:
            self.next_sweep = now + self.sweep_interval
            self.hub.remove_stale(self.config.stale_seconds)
            self.hub.prune()
            self._release()
            self.store.collect()
        self._release()

    def run(self):
        """Serve until ``stop()`` (or SIGTERM/SIGINT), then answer parked polls and close."""
        gc.freeze()  # what the store restored lives as long as the hub does: never scan it again
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        poller = zmq.Poller()
        poller.register(self.rpc, zmq.POLLIN)
        poller.register(self.events, zmq.POLLIN)
        poller.register(self.replay, zmq.POLLIN)
        log.info(
            "hub serving requests at %s, events from %s, client events at %s",
            self.config.rpc_endpoint, self.config.events_endpoint, self.config.client_events_endpoint,
        )
        try:
            while not self.stopping:
                self.run_once(poller)
        finally:
            self.hub.close()
            self._release(force=True)
            self.close()
            self.store.close()
            log.info("hub stopped")

    def stop(self, *_):
        """Ask the loop to finish its turn and exit."""
        self.stopping = True

    def close(self):
        """Close every socket (parked polls were answered first)."""
        for sock in (self.rpc, self.events, self.client_events, self.replay):
            sock.setsockopt(zmq.LINGER, 500)
            sock.close()
        if self.auth is not None:
            self.auth.stop()
