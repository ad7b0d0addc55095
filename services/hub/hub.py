"""The hub's state: sessions, channels and parked polls, owned by one thread.

Nothing here touches a socket. Replies to parked polls go out through the
``reply(peer, req_id, fields)`` callable the server passes in; time comes
from ``clock`` (monotonic seconds) and ``wallclock`` (epoch seconds), and ids
from ``new_id``, so tests drive expiry and ordering without sleeping.
"""

import heapq
import hmac
import logging
import math
import time
import uuid
from datetime import datetime, timezone

from services import protocol
from services.protocol import ProtocolError
from services.hub.metrics import HubMetrics, Published
from services.hub.admission import Admission
from services.hub.changes import Changes
from services.hub.commands import Commands
from services.hub import conflation
from services.hub.history import History
from services.hub.jobs import Jobs
from services.hub.store import MemoryStore
from services.hub.records import EMPTY
from services.hub.sessions import Parked, Session, json_entry

log = logging.getLogger(__name__)

# An ephemeral session (a dashboard tab) whose page closed before its stream opened, or while it
# long-polled, has no stream to end: it goes after this long without a poll.
EPHEMERAL_IDLE_SECONDS = 60.0
# A long-polling client is between two polls for a moment after each answer: still connected for this long.
POLL_GAP_SECONDS = 5.0
# The most credit a stream may hold (docs/TRANSPORTS.md, rule 5): the gateway grants its buffer's room.
MAX_WINDOW = 100_000
MAX_WINDOW_BYTES = 64 * 1024 * 1024


_iso_second = [None, ""]  # the last whole second formatted, and its text up to the "."


def iso_utc(epoch_seconds):
    """ISO 8601 UTC with milliseconds and a ``Z``, as every delivered message carries.

    Called for every published message: the date and time of day are
    formatted once per second, only the milliseconds per call. The split
    rounds exactly as ``datetime.fromtimestamp`` does (half-even microseconds).
    """
    fraction, whole = math.modf(epoch_seconds)
    micros = round(fraction * 1e6)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    elif micros < 0:
        whole, micros = whole - 1, micros + 1_000_000
    if whole != _iso_second[0]:
        dt = datetime.fromtimestamp(int(whole), timezone.utc)
        _iso_second[:] = [whole, dt.strftime("%Y-%m-%dT%H:%M:%S.")]
    return f"{_iso_second[1]}{micros // 1000:03d}Z"


class Hub:
    """Every client, channel and parked poll of the bridge."""

    def __init__(self, config, reply, clock=time.monotonic, wallclock=time.time, new_id=uuid.uuid4, store=None,
                 changes=None):
        self.config = config
        self.reply = reply
        self.clock = clock
        self.wallclock = wallclock
        self.new_id = new_id
        self.sessions = {}  # client_id -> Session
        self.channels = {}  # channel -> set of Session
        self.by_type = {}  # client_type -> set of Session
        self.ready = set()  # sessions with a parked poll and something to deliver
        self.deadlines = []  # heap of (deadline, counter, Session)
        self._counter = 0
        self._iso_ms, self._iso_text = None, ""  # now_iso()'s last millisecond and its text
        self.started = clock()
        self.stats = {"published": 0, "delivered": 0, "dropped": 0, "undeliverable": 0, "client_messages": 0}
        self.admission = Admission(self)
        self.metrics = HubMetrics(clock)
        # Durability (docs/DURABILITY.md): what changed this turn, for the store's one commit. The loop
        # owns the change set (services/hub/changes.py); the state records into it.
        if changes is None:
            changes = Changes(clock)
        self.changes = changes
        self.history = History(config.history_size, config.history_seconds, config.history_channels, wallclock,
                               max_bytes=config.history_max_bytes, changes=changes.history)
        self.jobs = Jobs(config.jobs_max, config.jobs_keep_seconds, wallclock, config.job_stale_seconds, changes)
        self.store = store or MemoryStore()
        self.commands = Commands(self, config)  # docs/BACKENDS.md: calls into a client

    # ----------------------------------------------------------- restore
    def restore(self, snapshot=EMPTY):
        """Rebuild sessions, queues, history, jobs and the stream position from what the store read back."""
        now = self.clock()
        for stored in snapshot.sessions:
            m = stored.meta
            session = Session(stored.client_id, m["client_type"], self.config.queue_size, now, m["connected_at"])
            session.client_name = m.get("client_name")
            session.info = m.get("info") or {}
            session.ephemeral = bool(m.get("ephemeral"))
            session.next_seq = stored.next_seq
            session.dropped_total = stored.dropped_total
            session.dropped_unreported = stored.dropped_unreported
            session.restore_reports(m.get("reports") or ())
            self.admission.new_session(session)  # a fresh send bucket (and secret, replaced next)
            if "secret" in m:
                session.secret = m["secret"]
            self.sessions[session.client_id] = session
            self.by_type.setdefault(session.client_type, set()).add(session)
            self.subscribe(session, m.get("subscriptions") or ())
            append = session.queue.append
            for entry in stored.queue:
                append(entry)
            session.limit = max(session.limit, len(session.queue))
            # everything below the queue's head was acknowledged
            session.acked = (session.queue[0][0] if session.queue else session.next_seq) - 1
            # What is queued may have reached a reader before the restart (SSE acks only when it
            # reconnects): evicting it is a loss only if the reader resumes below it (Session.rewind).
            session.sent = session.next_seq - 1
        self.changes.sessions.clear()  # as stored
        self.changes.meta.clear()
        for ch in snapshot.channels:
            self.history.load(ch.name, ch.epoch, ch.next_offset, ch.last_used, ch.entries)
        self.history.loaded()  # a smaller BRIDGE_HISTORY_MAX_BYTES than the last run's applies now
        for key, state in snapshot.jobs.items():
            self.jobs.load(key, state)
        if snapshot.system_status is not None:
            self.jobs.system_status = snapshot.system_status
        if snapshot.stream is not None and getattr(self, "stream", None) is not None:
            self.stream.load(snapshot.stream)
        for record in snapshot.commands:
            self.commands.restore(record)
        self.commands.restored()

    # ----------------------------------------------------------- sessions
    def now_iso(self):
        """The current wall time in the format messages carry.

        Formatted once per millisecond: a loop turn that answers a thousand
        polls stamps them all with the same few strings.
        """
        now = self.wallclock()
        ms = int(now * 1000)
        if ms != self._iso_ms:
            self._iso_ms = ms
            self._iso_text = iso_utc(now)
        return self._iso_text

    def session(self, client_id, secret=None):
        """The session ``client_id`` names, if ``secret`` (when given) proves ownership.

        Raises ``ProtocolError(unknown_client)`` for an unknown id and a wrong
        secret alike. The dispatch wrapper calls it once per request that
        names a client (``protocol.CLIENT_OPS``) and hands the session on.
        """
        return self.admission.client(client_id, secret)

    def seen(self, session):
        """``session`` made a request: its idle time starts again."""
        session.last_seen = self.clock()
        if session.limit != self.config.queue_size:
            self._relax_limit(session)
        self.changes.sessions.add(session)

    def create_session(self, client_type, ephemeral=False):
        """A new session with ``connection_established`` already queued.

        An ``ephemeral`` session (a dashboard tab) is removed when its stream
        ends, or after ``EPHEMERAL_IDLE_SECONDS`` without a reader.
        """
        if len(self.sessions) >= self.config.max_clients:
            raise ProtocolError("too_many_clients", f"the bridge holds {self.config.max_clients} clients already")
        client_id = str(self.new_id())
        now_iso = self.now_iso()
        session = Session(client_id, client_type, self.config.queue_size, self.clock(), now_iso)
        session.ephemeral = ephemeral
        self.admission.new_session(session)
        self.sessions[client_id] = session
        self.by_type.setdefault(client_type, set()).add(session)
        self.changes.meta_changed(session)
        session.enqueue({
            "type": "connection_established",
            "client_id": client_id,
            "protocol_version": protocol.CLIENT_PROTOCOL_VERSION,
            "server_time": now_iso,
            "timestamp": now_iso,
        })
        log.info("client %s connected (type %s)", client_id, client_type)
        return session

    def drop_client(self, session, reason):
        """Remove a session and everything that points at it; empty channels go too."""
        if self.sessions.pop(session.client_id, None) is None:
            return
        self.changes.forget(session)
        if session.parked is not None:
            self._answer(session, [], closed=True)
        for channel in session.subscriptions:
            members = self.channels.get(channel)
            if members is not None:
                members.discard(session)
                if not members:
                    del self.channels[channel]
        members = self.by_type.get(session.client_type)
        if members is not None:
            members.discard(session)
            if not members:
                del self.by_type[session.client_type]
        self.ready.discard(session)
        log.info("client %s removed (%s)", session.client_id, reason)

    def set_client_type(self, session, client_type):
        """Move a session to another client_type (register may rename it)."""
        if client_type == session.client_type:
            return
        members = self.by_type.get(session.client_type)
        if members is not None:
            members.discard(session)
            if not members:
                del self.by_type[session.client_type]
        session.client_type = client_type
        self.changes.meta_changed(session)
        self.by_type.setdefault(client_type, set()).add(session)

    def subscribe(self, session, channels):
        """Add channels to a session's subscriptions."""
        self.changes.meta_changed(session)
        for channel in channels:
            session.subscriptions.add(channel)
            self.channels.setdefault(channel, set()).add(session)

    def unsubscribe(self, session, channels):
        """Remove channels from a session's subscriptions; empty channels go."""
        self.changes.meta_changed(session)
        for channel in channels:
            session.subscriptions.discard(channel)
            members = self.channels.get(channel)
            if members is not None:
                members.discard(session)
                if not members:
                    del self.channels[channel]

    # ------------------------------------------------------------ delivery
    def publish(self, target, message, to=None):
        """Queue ``message`` for every session ``target``/``to`` names; returns how many.

        The message is stamped once (timestamp, channel) and shared between
        recipients; each queue gives it that client's own seq.
        """
        recipients = self._recipients(target, to)
        if not recipients and target not in (protocol.TARGET_CHANNEL, protocol.TARGET_ALL, protocol.TARGET_TYPE):
            raise ProtocolError("unknown_client", "unknown client_id", "client_id")
        msg = Published(message)
        msg.json = msg.packed = None
        msg.pop("seq", None)
        if not isinstance(msg.get("timestamp"), str):
            msg["timestamp"] = self.now_iso()
        if target == protocol.TARGET_CHANNEL:
            msg["channel"] = to
            self.history.record(to, msg)
        self.jobs.observe(msg)
        msg.at = self.clock()  # for the delivery latency; not a key, so never sent or stored
        self.metrics.published(msg, to if target == protocol.TARGET_CHANNEL else "")
        count = 0
        ready = self.ready
        wanted = conflation.key(msg)  # once, not once per recipient
        for session in recipients:
            victim = msg
            if len(session.queue) >= session.limit:
                self.changes.unacked_moves.add(session)
                if self._room_is_lost(session):
                    if not self._make_room(session, msg, wanted):
                        continue
                    if len(session.queue) >= session.limit:
                        victim = session.queue[0][1]
            if session.enqueue(msg, wanted):
                self.stats["dropped"] += 1
                self.metrics.dropped(victim)
            if session.parked is not None:
                ready.add(session)
            count += 1
        self.stats["published"] += 1
        if count == 0:
            self.stats["undeliverable"] += 1
        self.changes.sessions.update(recipients)
        return count

    def count_lost(self, target, to, count):
        """``count`` events for ``target``/``to`` that never reached the hub: each recipient is told in ``dropped``.

        Its seq skips them too, so the gap is where they would have been, as
        for any other loss (docs/DURABILITY.md). Returns how many clients.
        """
        recipients = self._recipients(target, to)
        for session in recipients:
            session.next_seq += count
            session.dropped_total += count
            session.dropped_unreported += count
        self.changes.sessions.update(recipients)
        self.stats["dropped"] += count * len(recipients)
        return len(recipients)

    def _recipients(self, target, to):
        """The sessions ``target``/``to`` names (a channel's members, every session, a type's, or one client)."""
        if target == protocol.TARGET_CHANNEL:
            return self.channels.get(to, ())
        if target == protocol.TARGET_ALL:
            return self.sessions.values()
        if target == protocol.TARGET_TYPE:
            return self.by_type.get(to, ())
        session = self.sessions.get(to)
        return (session,) if session is not None else ()

    def _room_is_lost(self, session):
        """A full queue is about to give up an entry: hand what is pending to an attached stream first.

        False when the oldest entry is already with the reader: dropping it
        costs nothing (``Session.enqueue`` notes it as delivered), so no other
        message is conflated or lost for it.
        """
        if session.queue[0][0] <= session.sent:
            return False
        parked = session.parked
        if parked is not None and parked.window is not None:
            self._push(session)  # everything pending in one push, so the next ones make room for free too
        return session.queue[0][0] > session.sent

    def _make_room(self, session, msg, wanted=conflation.UNKNOWN):
        """Conflation on overflow (services/hub/conflation.py); False: ``msg`` itself is dropped."""
        accept, removed = conflation.make_room(session, msg, wanted)
        for seq, victim in removed:
            self.changes.removed_seqs.append((session.client_id, seq))
            self.stats["dropped"] += 1
            self.metrics.dropped(victim)
        if not accept:
            self.stats["dropped"] += 1
            self.metrics.dropped(msg)
        return accept

    # ---------------------------------------------------- durability
    def enqueue(self, session, message):
        """Queue one message the hub made itself (snapshot, replay) for one session."""
        if len(session.queue) >= session.limit:
            self.changes.unacked_moves.add(session)
            if self._room_is_lost(session) and not self._make_room(session, message):
                return
        if session.enqueue(message):
            self.stats["dropped"] += 1
        self.changes.sessions.add(session)
        if session.parked is not None:
            self.ready.add(session)

    def _relax_limit(self, session):
        # A replay let the queue grow past its size (recover()); shrink back as the client catches up,
        # always leaving room for queue_size live messages on top of the backlog.
        size = self.config.queue_size
        session.limit = max(size, min(session.limit, len(session.queue) + size))

    def resume(self, client_id, secret):
        """The session ``client_id`` names if ``secret`` is its secret, else ``None``."""
        session = self.sessions.get(client_id) if isinstance(client_id, str) else None
        known = getattr(session, "secret", None)
        if session is None or not isinstance(secret, str) or not known:
            return None
        if not hmac.compare_digest(secret.encode(), known.encode()):
            return None
        session.last_seen = self.clock()
        self.changes.sessions.add(session)
        return session

    def recover(self, session, positions, budget):
        """Replay what ``session`` missed on each channel of ``positions`` (``{channel: (offset, epoch)}``).

        Returns ``{channel: report}`` (see ``History.since``). The queue may
        grow past its size by what is replayed (at most ``budget`` in all).
        """
        reports = {}
        for channel, (offset, epoch) in positions.items():
            missed, report = self.history.since(channel, offset, epoch, budget)
            budget -= len(missed)
            if missed:
                session.limit = max(session.limit, len(session.queue) + len(missed) + self.config.queue_size)
                for message in missed:
                    self.enqueue(session, message)
            reports[channel] = report
        return reports

    def snapshot(self, session, channel):
        """Queue the latest state of ``jobs`` or ``system`` for a new subscriber (Clone pattern)."""
        now = self.now_iso()
        position = self.history.channel(channel).position()
        if channel == "jobs":
            jobs, left_out = self.jobs.listing(protocol.POLL_REPLY_BYTES)  # one message must fit one poll answer
            message = {"type": "jobs_snapshot", "jobs": jobs, "count": len(jobs)}
            if left_out:
                message["left_out"] = left_out
        elif channel == "system":
            latest = self.jobs.system_status
            message = {
                "type": "system_snapshot",
                "status": None if latest is None else latest.get("status"),
                "sampled_at": None if latest is None else latest.get("timestamp"),
            }
        else:
            return
        message.update(channel=channel, offset=position["offset"], epoch=position["epoch"], timestamp=now)
        self.enqueue(session, message)

    def prune(self):
        """Age out channel history and finished jobs (from the stale sweep)."""
        self.history.prune()
        self.jobs.prune()
        self.commands.prune()

    def poll(self, session, request):
        """Answer a poll (a ``PollRequest``, services/hub/requests.py) now, or park it; returns reply fields or
        ``None`` when parked.

        A WebSocket/SSE connection polls with its ``reader`` token and
        ``after`` (the last seq it pushed); its first poll ``attach``es. A
        plain poll or an attaching reader takes the session over; a reader
        that was taken over gets ``superseded`` at once. With a ``window``
        (and ``window_bytes``) the poll is a stream: it stays parked until its
        wait ends and is pushed each message as it is queued, as long as the
        credit lasts (``credit`` renews it); each push is a reply with
        ``open: true``, the last one has no ``open``. The wait is capped here,
        once, at ``poll_max_wait``.
        """
        peer, req_id, wait, ack, after, reader, transport, attach, window, window_bytes, json = request
        self.seen(session)
        session.last_poll = self.now_iso()
        if reader is not None and not attach and session.reader != reader:
            return {"messages": [], "dropped": 0, "timestamp": self.now_iso(), "superseded": True}
        if ack is not None:
            session.ack(ack)
            if session.client_id in self.commands.pending:
                self.commands.observe(session)  # an acknowledged command is running
        session.reader = reader
        session.transport = transport or protocol.TRANSPORT_POLL
        self.supersede(session)
        keep = ack is not None or after is not None
        start = max(session.acked, after or 0)
        self.stats["dropped"] += session.rewind(start)
        if keep:
            session.reads_from(start)  # losses told in a reply the client never got are told again
        wait = max(0.0, min(float(wait or 0), self.config.poll_max_wait))
        stream = window is not None and keep and wait > 0
        if wait <= 0 or (session.pending(start) and not stream):
            return self._poll_fields(session, keep, start, json)
        deadline = self.clock() + wait
        if stream:
            session.parked = Parked(peer, req_id, deadline, keep, start, min(window, MAX_WINDOW),
                                    min(window_bytes or 0, MAX_WINDOW_BYTES))
            self._push(session)
        else:
            session.parked = Parked(peer, req_id, deadline, keep, start, json=json)
        self.metrics.park(session.client_id)
        self._counter += 1
        heapq.heappush(self.deadlines, (deadline, self._counter, session))
        return None

    def credit(self, session, reader, window, window_bytes):
        """A stream's reader wrote ``window`` messages (``window_bytes``) out: it may be pushed that much more."""
        self.seen(session)
        parked = session.parked
        if parked is not None and parked.window is not None and session.reader == reader:
            parked.window = min(parked.window + window, MAX_WINDOW)
            parked.window_bytes = min(parked.window_bytes + window_bytes, MAX_WINDOW_BYTES)
            self.ready.add(session)
        return session

    def _push(self, session):
        """Push what is pending to the session's stream while its credit lasts (each push one reply)."""
        parked = session.parked
        while parked.window > 0 and parked.window_bytes > 0 and session.pending(parked.start):
            budget = min(protocol.POLL_REPLY_BYTES, parked.window_bytes)
            taken = []
            messages, size = session.take(min(self.config.poll_batch, parked.window), True, parked.start,
                                          budget, protocol.packed_size, taken)
            parked.start = taken[-1][0]
            parked.window -= len(messages)
            parked.window_bytes -= size  # below 0 by at most one message: the gateway's bound allows one more
            self.metrics.delivered(taken)
            self.stats["delivered"] += len(messages)
            if session.client_id in self.commands.pending:
                self.commands.observe(session, parked.start)
            fields = {"messages": messages, "dropped": session.take_dropped(taken[0][0]),
                      "timestamp": self.now_iso(), "bytes": size, "open": True}
            self.reply(parked.peer, parked.req_id, fields)

    def _poll_fields(self, session, keep, start=None, json=False):
        # Cut by count and by bytes, so the reply fits the link (protocol.MAX_REPLY_BYTES); "more" says so.
        # With ``json`` the messages go as one JSON array (``messages_json``), each published message
        # encoded once for all its recipients: the gateway writes it into the answer as it is.
        taken = []
        messages, _ = session.take(self.config.poll_batch, keep, start, protocol.POLL_REPLY_BYTES,
                                   None if json else protocol.packed_size, taken, json_entry if json else None)
        if messages and not keep:
            self.changes.unacked_moves.add(session)  # drained: gone for good, the store must say so now
        self.metrics.delivered(taken)
        self.stats["delivered"] += len(messages)
        if messages and session.client_id in self.commands.pending:
            self.commands.observe(session, taken[-1][0])
        if keep and not messages:
            # Acknowledged delivery tells a loss with the next message: the client's ack of that message is what
            # confirms the report, and a reply with no message could never be confirmed (lost in flight, it
            # would be taken as told). The seq gap shows the loss at the same moment.
            dropped = 0
        else:
            dropped = session.take_dropped(taken[0][0] if keep else None)
        fields = {"dropped": dropped, "timestamp": self.now_iso()}
        if not json:
            fields["messages"] = messages
        elif all(messages) and sum(map(len, messages)) + len(messages) < protocol.MAX_FRAME_BYTES:
            fields["messages_json"] = b"[" + b",".join(messages) + b"]"
        else:  # a message JSON cannot carry, or one whose text outgrows the link (escapes): as maps
            fields["messages"] = [{**message, "seq": seq} for seq, message in taken]
        if session.queue and not keep:
            fields["more"] = True
        elif keep and messages and session.pending(taken[-1][0]):
            fields["more"] = True
        return fields

    def ack(self, session, seq):
        """Forget a session's messages up to ``seq`` (None: nothing to forget, the session was just seen)."""
        self.seen(session)
        if seq is not None:
            session.ack(max(0, seq))
            if session.client_id in self.commands.pending:
                self.commands.observe(session)
        return session

    def detach(self, session, reader):
        """A WebSocket/SSE connection ended: release its parked poll; the stale timeout runs from now."""
        self.seen(session)
        if session.reader == reader:
            session.reader = None
            if session.parked is not None:
                self._answer(session, [], closed=True)
        return session

    def supersede(self, session):
        """Another reader takes the session over: its parked poll, if any, is answered ``superseded``."""
        if session.parked is not None:
            self._answer(session, [], superseded=True)

    def _answer(self, session, messages, **extra):
        parked, session.parked = session.parked, None
        self.metrics.unpark(session.client_id)
        # A stream's last reply also reports losses no push has told yet (a dropped newcomer).
        dropped = session.take_dropped(parked.start) if parked.window is not None and not extra else 0
        fields = {"messages": messages, "dropped": dropped, "timestamp": self.now_iso()}
        fields.update(extra)
        self.reply(parked.peer, parked.req_id, fields)

    def flush(self):
        """Answer every parked poll that has something to deliver (once per loop turn)."""
        ready, self.ready = self.ready, set()
        for session in ready:
            parked = session.parked
            if parked is None or not session.pending(parked.start if parked.start is not None else 0):
                continue
            if parked.window is not None:
                self._push(session)
                continue
            session.parked = None
            self.metrics.unpark(session.client_id)
            self.reply(parked.peer, parked.req_id,
                       self._poll_fields(session, parked.ack_mode, parked.start, parked.json))

    def expire(self):
        """Answer parked polls whose wait has ended with an empty list."""
        now = self.clock()
        deadlines = self.deadlines
        while deadlines and deadlines[0][0] <= now:
            deadline, _, session = heapq.heappop(deadlines)
            parked = session.parked
            if parked is not None and parked.deadline == deadline:
                session.last_seen = now
                self._answer(session, [])
        self.commands.expire()

    def next_deadline(self):
        """The monotonic time of the next parked-poll deadline, or ``None``."""
        deadlines = self.deadlines
        while deadlines and (deadlines[0][2].parked is None or deadlines[0][2].parked.deadline != deadlines[0][0]):
            heapq.heappop(deadlines)
        wake = self.commands.next_wake()
        if deadlines and (wake is None or deadlines[0][0] < wake):
            return deadlines[0][0]
        return wake

    def remove_stale(self, older_than):
        """Drop sessions idle for more than ``older_than`` seconds (ephemeral ones sooner); returns their ids."""
        short = min(older_than, EPHEMERAL_IDLE_SECONDS)
        now = self.clock()
        stale = [s for s in self.sessions.values()
                 if s.parked is None and s.last_seen < now - (short if s.ephemeral else older_than)]
        for session in stale:
            self.drop_client(session, f"idle for more than {short if session.ephemeral else older_than:g} s")
        return [s.client_id for s in stale]

    def close(self):
        """Answer every parked poll before the hub exits."""
        for session in list(self.sessions.values()):
            if session.parked is not None:
                self._answer(session, [], closed=True)
        self.commands.close()

    # ------------------------------------------------------------- reports
    def describe(self, session):
        """A session as ``/ws/clients`` lists it."""
        now = self.clock()
        return {
            "id": session.client_id,
            "client_type": session.client_type,
            "client_name": session.client_name,
            "connected_at": session.connected_at,
            "last_poll": session.last_poll,
            "idle_seconds": round(now - session.last_seen, 3),
            "subscriptions": sorted(session.subscriptions),
            "queue_depth": len(session.queue),
            "dropped": session.dropped_total,
            "next_seq": session.next_seq,
            "polling": session.parked is not None,
            "transport": session.transport,
            "connected": self._connected(session, now),
            "acked_seq": session.acked,
            "info": session.info,
        }

    def _connected(self, session, now):
        """A reader is waiting now, a WebSocket/SSE reader polled within the longest hold, or a plain
        poller is between two polls (it polled within ``POLL_GAP_SECONDS``)."""
        if session.parked is not None:
            return True
        if session.reader is not None:
            return now - session.last_seen <= self.config.poll_max_wait
        return session.transport == protocol.TRANSPORT_POLL and now - session.last_seen <= POLL_GAP_SECONDS

    def _by_transport(self):
        now = self.clock()
        counts = {}
        for session in self.sessions.values():
            if session.transport is not None and self._connected(session, now):
                counts[session.transport] = counts.get(session.transport, 0) + 1
        return counts

    def _readers(self):
        """Sessions with a reader now (``connected``) apart from those without: counts and dropped totals."""
        now = self.clock()
        live = idle = dropped_live = dropped_idle = 0
        for session in self.sessions.values():
            if self._connected(session, now):
                live += 1
                dropped_live += session.dropped_total
            else:
                idle += 1
                dropped_idle += session.dropped_total
        return {"clients_live": live, "clients_idle": idle, "dropped_live": dropped_live, "dropped_idle": dropped_idle}

    def status(self):
        """The summary ``/ws/status`` shows."""
        by_type = {t: len(members) for t, members in self.by_type.items()}
        return {
            "clients": len(self.sessions),
            **self._readers(),
            "clients_by_type": by_type,
            "channels": {name: len(members) for name, members in self.channels.items()},
            "parked_polls": sum(1 for s in self.sessions.values() if s.parked is not None),
            "clients_by_transport": self._by_transport(),
            "queued_messages": sum(len(s.queue) for s in self.sessions.values()),
            "messages": dict(self.stats),
            "deliver_latency": self.metrics.latency_summary(),
            "notifier_last_seen_seconds": self.metrics.notifier_age(),
            "uptime_seconds": round(self.clock() - self.started, 3),
            "queue_size": self.config.queue_size,
            "stale_seconds": self.config.stale_seconds,
            "poll_max_wait": self.config.poll_max_wait,
            "protocol_version": protocol.CLIENT_PROTOCOL_VERSION,
            "store": self.store.describe(),
            "history": self.history.describe(),
            "jobs": len(self.jobs.jobs),
            "stream": self.stream.describe() if getattr(self, "stream", None) is not None else None,
            "job_stale_seconds": self.config.job_stale_seconds,
            "commands": self.commands.summary(),
        }
