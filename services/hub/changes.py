"""What changed in one loop turn: the value the hub's state records into and the store writes.

The hub server's loop owns one ``Changes``. The hub, its channel history,
its jobs and the notifier stream tracker record into it as they change
state; at the end of the turn ``store.commit(changes)`` writes it as one
transaction and clears it. Nothing else is shared between the state and the
store: the store never reads the hub's fields, the hub never reads the
store's. A commit that fails leaves the change set as it is, for the next
turn to write.
"""

import time


class HistoryChanges:
    """What changed in the channel history since the last commit."""

    __slots__ = ("meta", "added", "trimmed", "removed", "freed", "budget")

    def __init__(self, budget=256 * 2**20):
        self.meta = {}  # channel name -> Channel whose epoch/next_offset/last_used changed
        self.added = []  # (channel, offset, wall_seconds, message)
        self.trimmed = {}  # channel -> oldest offset still kept
        self.removed = set()  # channels forgotten entirely
        self.freed = 0  # bytes of kept messages forgotten, by any bound (the store collects by it)
        self.budget = budget  # the history's byte budget, set by History (the store collects by it)

    def __bool__(self):
        return bool(self.meta or self.added or self.trimmed or self.removed)

    def clear(self):
        """Everything was written."""
        self.meta.clear()
        self.added = []
        self.trimmed.clear()
        self.removed.clear()
        self.freed = 0


class Changes:
    """One loop turn's change set.

    ``sessions``: sessions whose queue, counters or fields may have changed;
    ``meta``: those whose stored meta (type, name, info, subscriptions,
    secret) changed; ``unacked_moves``: those whose queue lost entries other
    than by an acknowledgement (a drain, an overflow), so their head is
    written now while an acknowledged head may wait for the checkpoint;
    ``removed_seqs``: ``(client_id, seq)`` taken out of the middle of a
    queue; ``forgotten``: client ids dropped; ``history``; ``jobs`` (key ->
    state to write) and ``jobs_removed``; ``system_status`` (the newest, or
    ``None``: unchanged); ``stream`` (the notifier stream positions, or
    ``None``: unchanged); ``commands`` (id -> record to write) and
    ``commands_removed`` (services/hub/commands.py). ``clock`` is the loop's
    monotonic clock.
    """

    __slots__ = ("clock", "sessions", "meta", "unacked_moves", "removed_seqs", "forgotten", "history", "jobs",
                 "jobs_removed", "system_status", "stream", "commands", "commands_removed")

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.sessions = set()
        self.meta = set()
        self.unacked_moves = set()
        self.removed_seqs = []
        self.forgotten = set()
        self.history = HistoryChanges()
        self.jobs = {}
        self.jobs_removed = set()
        self.system_status = None
        self.stream = None
        self.commands = {}
        self.commands_removed = set()

    def __bool__(self):
        return bool(self.sessions or self.forgotten or self.removed_seqs or self.history or self.jobs
                    or self.jobs_removed or self.system_status is not None or self.stream is not None
                    or self.commands or self.commands_removed)

    def meta_changed(self, session):
        """``session``'s stored meta changed (and so did the session)."""
        self.meta.add(session)
        self.sessions.add(session)

    def forget(self, session):
        """``session`` was dropped."""
        self.forgotten.add(session.client_id)
        self.sessions.discard(session)
        self.meta.discard(session)

    def clear(self):
        """Everything was written (or, without a store, dropped)."""
        self.sessions.clear()
        self.meta.clear()
        self.unacked_moves.clear()
        self.removed_seqs.clear()
        self.forgotten.clear()
        self.history.clear()
        self.jobs.clear()
        self.jobs_removed.clear()
        self.system_status = None
        self.stream = None
        self.commands.clear()
        self.commands_removed.clear()
