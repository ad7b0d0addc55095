"""Commands: a backend asks a client to do something and waits for the outcome (docs/BACKENDS.md).

A command is a ``command`` message queued for one client like any other
(seq, ack, redelivery, resume), plus a record the hub keeps here: who asked
(``caller``), which client, until when (``deadline``, wall-clock epoch
seconds so it survives a restart), and its state::

    queued -> delivered -> running -> done | failed
       |          \\__________\\_____ unknown (deadline passed after delivery: it may have run)
       \\__ expired (deadline passed before any delivery: it never ran, safe to retry)

``delivered``: handed to the client in a poll answer or a stream push;
``running``: the client acknowledged it (or reported progress). A state only
moves forward; ``unknown`` still becomes ``done``/``failed`` when a late
answer comes (``late: true``), so a later ``result`` tells what happened.

Callers wait with a parked request (``call`` or ``command`` with ``wait``):
the hub answers it with the command when it ends or the wait is over, and,
when asked for ``progress``, pushes each progress report first as a reply
with ``open: true``. Answers go to the waiting requester only, never to
``BRIDGE_CLIENT_EVENTS``.

Records are durable with the rest of the hub's state: each change is
recorded in the turn's change set (``changes.commands``,
``changes.commands_removed``) that the store's commit writes; records
of finished commands are kept for a while (count, bytes and age bounded) so
``result`` can be asked late.
"""

import heapq
import logging

from services import protocol
from services.protocol import ProtocolError

log = logging.getLogger(__name__)

QUEUED, DELIVERED, RUNNING = "queued", "delivered", "running"
DONE, FAILED, EXPIRED, UNKNOWN = "done", "failed", "expired", "unknown"
PENDING = (QUEUED, DELIVERED, RUNNING)
FINAL = (DONE, FAILED, EXPIRED, UNKNOWN)
MESSAGE_TYPE = "command"  # what the client receives
RESULT_TYPE = "command_result"  # what the client sends back
PROGRESS_TYPE = "command_progress"
NOT_SUPPORTED = "not_supported"  # the error code a client answers for an action it does not know
MAX_ERROR_TEXT = 2000
MAX_PROGRESS_TEXT = 200
MAX_ID = 64
MAX_LISTED = 200  # recent finished commands a listing shows


class Waiter:
    """A parked ``call``/``command`` request: answered when the command ends or ``until`` passes."""

    __slots__ = ("peer", "req_id", "until", "progress")

    def __init__(self, peer, req_id, until, progress):
        self.peer = peer
        self.req_id = req_id
        self.until = until
        self.progress = progress


class Commands:
    """Every command the hub knows, by id, with the waiters and timers around them."""

    def __init__(self, hub, config):
        self.hub = hub
        self.per_client = config.commands_per_client
        self.per_caller = config.commands_per_caller
        self.max_timeout = config.command_max_timeout
        self.keep = config.commands_keep
        self.keep_bytes = config.commands_keep_bytes
        self.keep_seconds = config.commands_keep_seconds
        self.records = {}  # command id -> record (a dict: what the store keeps)
        self.pending = {}  # client id -> {command id: record} of commands not finished
        self.callers = {}  # caller -> count of its commands not finished
        self.finished = {}  # command id -> bytes, in the order they finished (oldest first)
        self.finished_bytes = 0
        self.waiters = {}  # command id -> [Waiter]
        self.timers = []  # heap of (monotonic time, counter, command id | None): deadlines and wait ends
        self._counter = 0
        self.stats = {"called": 0, DONE: 0, FAILED: 0, EXPIRED: 0, UNKNOWN: 0}

    # ------------------------------------------------------------ clocks
    def _mono(self, wall):
        """The monotonic time at which the wall-clock time ``wall`` comes."""
        return self.hub.clock() + (wall - self.hub.wallclock())

    def _timer(self, when, command_id):
        self._counter += 1
        heapq.heappush(self.timers, (when, self._counter, command_id))

    def _changed(self, record):
        """``record`` is to be written with this turn's changes (services/hub/changes.py)."""
        changes = self.hub.changes
        changes.commands[record["id"]] = record
        changes.commands_removed.discard(record["id"])

    # ---------------------------------------------------------- requests
    def call(self, peer, req_id, req, caller):
        """Queue a new command (or, for an id already known, wait on it); the reply fields or ``None``."""
        command_id = req["command_id"]
        record = self.records.get(command_id)
        if record is None:
            record = self._create(req, caller)
        return self.wait(peer, req_id, record, req.get("wait"), req.get("progress"))

    def _create(self, req, caller):
        hub = self.hub
        command_id, action = req["command_id"], req["action"]
        if not command_id or len(command_id) > MAX_ID:
            raise ProtocolError("bad_request", f"command_id must be 1 to {MAX_ID} characters", "command_id")
        if not protocol.valid_type(action):
            raise ProtocolError("bad_request", "action must be a short identifier", "action")
        timeout = float(req["within"])
        if not 0 < timeout <= self.max_timeout:
            raise ProtocolError("bad_request", f"within must be above 0 and at most {self.max_timeout:g} s",
                                "within")
        session = self._recipient(req["target"], req["to"])
        mine = self.pending.get(session.client_id, {})
        if len(mine) >= self.per_client:
            raise ProtocolError("too_many_commands", f"client has {self.per_client} commands pending already",
                                "to", retry_after=1)
        if self.callers.get(caller, 0) >= self.per_caller:
            raise ProtocolError("too_many_commands", f"caller {caller[:40]!r} has {self.per_caller} commands "
                                "pending already", "caller", retry_after=1)
        now = hub.wallclock()
        record = {
            "id": command_id, "caller": caller, "client_id": session.client_id,
            "client_type": session.client_type, "action": action, "timeout": timeout, "created": now, "deadline": now + timeout, "state": QUEUED, "seq": None,
        }
        message = {
            "type": MESSAGE_TYPE, "command_id": command_id, "action": action, "params": req.get("params"),
            "timeout": timeout, "deadline": _iso(now + timeout),
        }
        if message["params"] is None:
            message["params"] = {}
        record["seq"] = session.next_seq
        hub.publish(protocol.TARGET_CLIENT, message, session.client_id)  # unkeyed: always queued
        self.records[command_id] = record
        self._add_pending(record)
        self._timer(self._mono(record["deadline"]), command_id)
        self._changed(record)
        self.stats["called"] += 1
        return record

    def _recipient(self, target, to):
        hub = self.hub
        if target == protocol.TARGET_CLIENT:
            session = hub.sessions.get(to)
        elif target == protocol.TARGET_TYPE:
            # The client of that type heard from last (a parked poll counts as now).
            members = hub.by_type.get(to) or ()
            session = max(members, key=lambda s: (s.parked is not None, s.last_seen), default=None)
        else:
            raise ProtocolError("bad_request", "target must be client or client_type", "target")
        if session is None:
            raise ProtocolError("unknown_client", f"no client {str(to)[:80]!r} is known to the bridge", "to")
        return session

    def wait(self, peer, req_id, record, wait, progress):
        """The command now when it has ended or ``wait`` is 0; else park the request until it ends."""
        self.observe_record(record)
        wait = max(0.0, min(float(wait or 0), record["deadline"] - self.hub.wallclock() + 1.0,
                            self.hub.config.poll_max_wait))
        if record["state"] in FINAL or wait <= 0:
            return {"command": self.view(record)}
        until = self.hub.clock() + wait
        self.waiters.setdefault(record["id"], []).append(Waiter(peer, req_id, until, bool(progress)))
        self._timer(until, record["id"])
        return None

    def get(self, command_id):
        """The record of ``command_id`` or ``ProtocolError(unknown_command)``."""
        record = self.records.get(command_id)
        if record is None:
            raise ProtocolError("unknown_command", f"no command {command_id[:80]!r} is known", "command_id")
        return record

    # ------------------------------------------------------ from clients
    def client_result(self, session, message):
        """A ``command_result`` from the client the command went to; returns the answer to that send."""
        record = self._own(session, message)
        ok = message.get("ok") is True
        if record["state"] in (DONE, FAILED, EXPIRED):
            # Already answered (a repeated send whose answer was lost), or never delivered: nothing changes.
            return {"type": "command_ack", "command_id": record["id"], "state": record["state"]}
        late = record["state"] == UNKNOWN
        if ok:
            record["result"] = message.get("result")
            self._finish(record, DONE)
        else:
            error = message.get("error")
            if not isinstance(error, dict):
                error = {"message": error}
            code = error.get("code") if isinstance(error.get("code"), str) else "command_failed"
            text = error.get("message")
            record["error"] = {"code": code[:64], "message": str(text if text is not None else "")[:MAX_ERROR_TEXT]}
            self._finish(record, FAILED)
        if late:
            record["late"] = True
        return {"type": "command_ack", "command_id": record["id"], "state": record["state"]}

    def client_progress(self, session, message):
        """A ``command_progress`` report: kept, and pushed to the callers that asked for progress."""
        record = self._own(session, message)
        pct = message.get("pct")
        if pct is not None and (not isinstance(pct, (int, float)) or isinstance(pct, bool) or not 0 <= pct <= 100):
            raise ProtocolError("bad_request", "pct must be a number from 0 to 100", "pct")
        text = message.get("text")
        if text is not None and not isinstance(text, str):
            raise ProtocolError("bad_request", "text must be a string", "text")
        if record["state"] in PENDING:
            record["progress"] = {"pct": pct, "text": None if text is None else text[:MAX_PROGRESS_TEXT]}
            self._advance(record, RUNNING)
            self._changed(record)
            view = self.view(record)
            for waiter in self.waiters.get(record["id"], ()):
                if waiter.progress:
                    self.hub.reply(waiter.peer, waiter.req_id, {"command": view, "open": True})
        return {"type": "command_ack", "command_id": record["id"], "state": record["state"]}

    def _own(self, session, message):
        command_id = message.get("command_id")
        if not isinstance(command_id, str):
            raise ProtocolError("bad_request", "message field 'command_id' must be a string", "command_id")
        record = self.records.get(command_id)
        if record is None or record["client_id"] != session.client_id:
            raise ProtocolError("unknown_command", f"no command {command_id[:80]!r} for this client", "command_id")
        return record

    # ------------------------------------------------------ observation
    def observe(self, session, handed=None):
        """Note what ``session`` acknowledged (running) and, after a delivery, was handed up to seq ``handed``.

        Only a real hand-out counts as delivery: a restored session's
        ``sent`` assumes everything may be in flight, which says nothing
        about a command still queued.
        """
        mine = self.pending.get(session.client_id)
        if mine:
            for record in list(mine.values()):
                self._observe(session, record, handed)

    def observe_record(self, record):
        if record["state"] in PENDING:
            session = self.hub.sessions.get(record["client_id"])
            if session is not None:
                self._observe(session, record)

    def _observe(self, session, record, handed=None):
        seq = record["seq"]
        if session.acked >= seq:
            self._advance(record, RUNNING)
        elif handed is not None and handed >= seq:
            self._advance(record, DELIVERED)

    def _advance(self, record, state):
        if PENDING.index(state) > PENDING.index(record["state"]):
            record["state"] = state
            if state == DELIVERED or "delivered" not in record:
                record["delivered"] = self.hub.wallclock()
            self._changed(record)

    # ------------------------------------------------------------ timers
    def next_wake(self):
        """The monotonic time of the next command deadline or wait end, or ``None``."""
        return self.timers[0][0] if self.timers else None

    def expire(self):
        """End commands whose deadline passed, and answer waits that are over (each loop turn)."""
        now = self.hub.clock()
        timers = self.timers
        while timers and timers[0][0] <= now:
            _, _, command_id = heapq.heappop(timers)
            record = self.records.get(command_id)
            if record is None:
                continue
            if record["state"] in PENDING and self.hub.wallclock() >= record["deadline"]:
                self._deadline(record)
            waiters = self.waiters.get(command_id)
            if waiters:
                due = [w for w in waiters if w.until <= now]
                if due:
                    view = self.view(record)
                    for waiter in due:
                        waiters.remove(waiter)
                        self.hub.reply(waiter.peer, waiter.req_id, {"command": view})
                    if not waiters:
                        del self.waiters[command_id]

    def _deadline(self, record):
        self.observe_record(record)
        if record["state"] != QUEUED:
            self._finish(record, UNKNOWN)
            return
        # Never handed out: take it out of the queue, so it never runs.
        session = self.hub.sessions.get(record["client_id"])
        if session is not None and session.queue.discard(record["seq"]):
            changes = self.hub.changes
            changes.removed_seqs.append((session.client_id, record["seq"]))
            changes.unacked_moves.add(session)
            changes.sessions.add(session)
        self._finish(record, EXPIRED)

    def _finish(self, record, state):
        was = record["state"]
        record["state"] = state
        record["finished"] = self.hub.wallclock()
        self.stats[state] += 1
        self._changed(record)
        if was in PENDING:
            self._drop_pending(record)
        self._note_finished(record)
        view = self.view(record)
        for waiter in self.waiters.pop(record["id"], ()):
            self.hub.reply(waiter.peer, waiter.req_id, {"command": view})
        # An outcome, not a fault of the bridge: INFO whatever it is (the caller is told).
        log.info("command %s (%s to %s from %s) %s", record["id"], record["action"], record["client_id"],
                 record["caller"], state)

    def close(self):
        """Answer every parked wait with the command as it stands (the hub is stopping)."""
        for command_id, waiters in self.waiters.items():
            view = self.view(self.records[command_id])
            for waiter in waiters:
                self.hub.reply(waiter.peer, waiter.req_id, {"command": view})
        self.waiters.clear()

    # ------------------------------------------------------- bookkeeping
    def _add_pending(self, record):
        self.pending.setdefault(record["client_id"], {})[record["id"]] = record
        self.callers[record["caller"]] = self.callers.get(record["caller"], 0) + 1

    def _drop_pending(self, record):
        mine = self.pending.get(record["client_id"])
        if mine is not None:
            mine.pop(record["id"], None)
            if not mine:
                del self.pending[record["client_id"]]
        left = self.callers.get(record["caller"], 0) - 1
        if left > 0:
            self.callers[record["caller"]] = left
        else:
            self.callers.pop(record["caller"], None)

    def _note_finished(self, record):
        size = protocol.packed_size(record)
        old = self.finished.pop(record["id"], None)
        if old is not None:
            self.finished_bytes -= old
        self.finished[record["id"]] = size
        self.finished_bytes += size
        self.prune()

    def prune(self):
        """Forget the oldest finished commands beyond the count and byte bounds, or older than kept."""
        cutoff = self.hub.wallclock() - self.keep_seconds
        while self.finished:
            command_id, size = next(iter(self.finished.items()))
            record = self.records.get(command_id)
            too_old = record is None or record.get("finished", 0) < cutoff
            if not (too_old or len(self.finished) > self.keep or self.finished_bytes > self.keep_bytes):
                break
            del self.finished[command_id]
            self.finished_bytes -= size
            self.records.pop(command_id, None)
            self.waiters.pop(command_id, None)
            self.hub.changes.commands.pop(command_id, None)
            self.hub.changes.commands_removed.add(command_id)

    def restore(self, record):
        """Take back one stored record (store.load): pending ones get their deadline timer again."""
        self.records[record["id"]] = record
        if record["state"] in PENDING:
            self._add_pending(record)
            self._timer(self._mono(record["deadline"]), record["id"])
        else:
            self.finished[record["id"]] = protocol.packed_size(record)
            self.finished_bytes += self.finished[record["id"]]

    def restored(self):
        """After load: finished records in the order they finished, so pruning takes the oldest."""
        order = sorted(self.finished, key=lambda cid: self.records[cid].get("finished", 0))
        self.finished = {cid: self.finished[cid] for cid in order}

    # ----------------------------------------------------------- reports
    def view(self, record):
        """A command as callers and listings see it (the record holds no params: they travel in the message)."""
        now = self.hub.wallclock()
        end = record.get("finished", now)
        view = {
            "command_id": record["id"], "state": record["state"], "action": record["action"],
            "caller": record["caller"], "client_id": record["client_id"], "client_type": record["client_type"],
            "created_at": _iso(record["created"]), "deadline": _iso(record["deadline"]),
            "duration": round(end - record["created"], 3),
        }
        for key in ("result", "error", "progress", "late"):
            if key in record:
                view[key] = record[key]
        return view

    def listing(self, limit=MAX_LISTED):
        """Pending commands (all of them) and the most recent finished ones, newest first."""
        for mine in self.pending.values():
            for record in mine.values():
                self.observe_record(record)
        pending = [self.view(r) for mine in self.pending.values() for r in mine.values()]
        pending.sort(key=lambda v: v["created_at"], reverse=True)
        recent = [self.view(self.records[cid]) for cid in reversed(list(self.finished)[-limit:])]
        for view in pending + recent:
            view.pop("result", None)  # a listing says how it went, the result is asked by id
        return {"pending": pending, "recent": recent, "count": len(pending), "stats": dict(self.stats)}

    def summary(self):
        """The few figures /ws/status shows."""
        by_state = {}
        for mine in self.pending.values():
            for record in mine.values():
                by_state[record["state"]] = by_state.get(record["state"], 0) + 1
        return {"pending": sum(by_state.values()), "pending_by_state": by_state, "kept": len(self.records),
                **{k: v for k, v in self.stats.items()}}


def _iso(epoch):
    from services.hub.hub import iso_utc  # here, not at the top: hub.py imports this module
    return iso_utc(epoch)


# ------------------------------------------------ handlers (services/hub/handlers.py's tables)
def call(hub, ctx, req):
    """Op ``call``: queue a command for a client and wait for it (``wait`` s at most)."""
    caller = req.get("caller") or "backend"
    return hub.commands.call(ctx.peer, req["id"], req, caller[:MAX_ID])


def command(hub, ctx, req):
    """Op ``command``: one command's state, waiting up to ``wait`` s for it to end."""
    record = hub.commands.get(req["command_id"])
    return hub.commands.wait(ctx.peer, req["id"], record, req.get("wait"), req.get("progress"))


def listing(hub, ctx, req):
    """Op ``commands``: pending and recent commands."""
    return {"commands": hub.commands.listing()}


def client_result(hub, ctx, session, message):
    """Client message ``command_result``: the outcome, to the caller only."""
    return hub.commands.client_result(session, message)


def client_progress(hub, ctx, session, message):
    """Client message ``command_progress``: a progress report, to the callers that asked."""
    return hub.commands.client_progress(session, message)
