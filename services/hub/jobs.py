"""The latest state of each job and of the system: what a late joiner needs first.

The ZeroMQ Guide's Clone pattern: the hub folds every ``job_*`` message it
publishes into one state per job, and keeps the newest ``system_status``.
``GET /ws/jobs`` reads these, and a client subscribing to ``jobs`` or
``system`` gets them as one snapshot message before the live updates. The
snapshot is queued in the same loop turn as the subscription, so nothing
published in between can be missed or seen twice.

Bounded: at most ``max_jobs``; finished jobs are forgotten ``keep_seconds``
after they finished, and when the table is full the job finished longest ago
(else the one updated longest ago) goes first.

What is read also says, by the hub's clock, ``idle_seconds`` since the job's
last event, ``duration_seconds`` from its first event to its end (or to now),
and ``stalled``: a job not finished and without an event for
``stale_seconds`` (``BRIDGE_JOB_STALE_SECONDS``). These are worked out when
read, never stored: a restart does not change them.
"""

from services.hub.changes import Changes
from services.wire import packed_size

STATUS_BY_TYPE = {
    "job_created": "created",
    "job_started": "started",
    "job_progress": "running",
    "job_completed": "completed",
    "job_failed": "failed",
}
FINISHED = ("completed", "failed")

# Fields a job message may carry that the state keeps, by message type.
_FIELDS = {
    "job_created": ("job_type", "name", "total"),
    "job_started": ("stage",),
    "job_progress": ("progress", "stage", "message"),
    "job_completed": ("result",),
    "job_failed": ("error", "result"),
}


def job_key(job_id):
    """Jobs are looked up by the text of their id (HTTP paths are text)."""
    return str(job_id)


class Jobs:
    """Every known job's state, the newest ``system_status``, and what changed."""

    def __init__(self, max_jobs, keep_seconds, wallclock, stale_seconds=120.0, changes=None):
        self.max_jobs = max_jobs
        self.keep_seconds = keep_seconds
        self.wallclock = wallclock
        self.stale_seconds = stale_seconds
        self.jobs = {}  # key -> state dict
        self.system_status = None  # the newest system_status message
        # The loop's change set (services/hub/changes.py): what the store writes at the next commit.
        self.changes = Changes() if changes is None else changes

    def observe(self, message):
        """Fold one published message into the state (other types are ignored)."""
        kind = message.get("type")
        if kind == "system_status":
            self.system_status = self.changes.system_status = message
            return
        status = STATUS_BY_TYPE.get(kind)
        if status is None or "job_id" not in message:
            return
        key = job_key(message["job_id"])
        now = self.wallclock()
        state = self.jobs.get(key)
        if state is None:
            if len(self.jobs) >= self.max_jobs:
                self._evict_one()
            state = self.jobs[key] = {"job_id": message["job_id"], "created_at": message.get("timestamp")}
            if status not in FINISHED:
                state["_first"] = now  # a job first heard of at its end has no known duration
        elif state["status"] in FINISHED and status not in FINISHED:
            return  # a late progress never reopens a finished job
        state["status"] = status
        for name in _FIELDS[kind]:
            if name in message:
                state[name] = message[name]
        if "offset" in message:
            state["offset"] = message["offset"]
        state["updated_at"] = message.get("timestamp")
        state["_touched"] = now
        if status in FINISHED:
            state["progress"] = 100 if status == "completed" else state.get("progress")
            state["finished_at"] = message.get("timestamp")
            state["_finished"] = now
        self.changes.jobs[key] = state
        self.changes.jobs_removed.discard(key)

    def get(self, job_id):
        """One job's public state, or ``None``."""
        state = self.jobs.get(job_key(job_id))
        return None if state is None else self.view(state, self.wallclock())

    def listing(self, max_bytes=None):
        """Every job's public state, oldest first: ``(views, left_out)``.

        With ``max_bytes``, the newest jobs that fit in that many packed bytes
        (at least one); ``left_out`` says how many older ones were not listed
        (each is still read by its id). A job's result may be 256 KiB, so a
        full table would not fit one reply.
        """
        now = self.wallclock()
        states = sorted(self.jobs.values(), key=lambda s: s["_touched"])
        if max_bytes is None:
            return [self.view(s, now) for s in states], 0
        views, size = [], 0
        for state in reversed(states):
            view = self.view(state, now)
            size += packed_size(view)
            if views and size > max_bytes:
                break
            views.append(view)
        views.reverse()
        return views, len(states) - len(views)

    def view(self, state, now):
        """A job as read: its public state plus ``idle_seconds``, ``duration_seconds`` and ``stalled``."""
        out = public(state)
        idle = max(0.0, now - state["_touched"])
        out["idle_seconds"] = round(idle, 3)
        first = state.get("_first")  # absent in a state stored before it was kept
        end = state.get("_finished", now)
        out["duration_seconds"] = None if first is None else round(max(0.0, end - first), 3)
        out["stalled"] = state.get("status") not in FINISHED and idle >= self.stale_seconds
        return out

    def prune(self):
        """Forget finished jobs older than ``keep_seconds`` (run from the stale sweep)."""
        cutoff = self.wallclock() - self.keep_seconds
        for key in [k for k, s in self.jobs.items() if s.get("_finished", cutoff) < cutoff]:
            self._forget(key)

    def _evict_one(self):
        finished = [(s["_finished"], k) for k, s in self.jobs.items() if "_finished" in s]
        if finished:
            self._forget(min(finished)[1])
        else:
            self._forget(min(self.jobs, key=lambda k: self.jobs[k]["_touched"]))

    def _forget(self, key):
        del self.jobs[key]
        self.changes.jobs.pop(key, None)
        self.changes.jobs_removed.add(key)

    def load(self, key, state):
        """Restore one job from the store."""
        self.jobs[key] = state


def public(state):
    """A state without the bookkeeping fields (those starting with ``_``)."""
    return {k: v for k, v in state.items() if not k.startswith("_")}
