"""Plain records the store reads back at start-up, for the hub to rebuild its state from.

The store knows tables and rows, the hub knows sessions and channels; these
records are all they share (``SqliteStore.load()`` returns a ``Snapshot``,
``Hub.restore()`` takes it).
"""

from typing import NamedTuple


class StoredSession(NamedTuple):
    """One session as stored: its meta record, counters and queued ``(seq, message)`` entries, oldest first."""

    client_id: str
    meta: dict
    next_seq: int
    dropped_total: int
    dropped_unreported: int
    queue: list


class StoredChannel(NamedTuple):
    """One channel's history as stored: ``entries`` holds ``(offset, wall_seconds, message)``, oldest first."""

    name: str
    epoch: str
    next_offset: int
    last_used: float
    entries: list


class Snapshot(NamedTuple):
    """Everything the store holds: sessions, channels, jobs (key -> state), the newest system_status and the
    notifier stream positions (``None`` when never stored)."""

    sessions: list
    channels: list
    jobs: dict
    system_status: object
    stream: object
    commands: list = ()  # command records (services/hub/commands.py)


EMPTY = Snapshot([], [], {}, None, None)
