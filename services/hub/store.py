"""The hub's durable state in SQLite: sessions, queues, channel history, jobs.

The hub keeps working in memory; this module mirrors what changed to an
embedded SQLite database once per loop turn (group commit), and reads it all
back when the hub starts. It sees the hub only through plain values: the
turn's change set (services/hub/changes.py) that ``commit()`` writes, one
small writer per table, and the records (services/hub/records.py) that
``load()`` returns for ``Hub.restore()``. The server sends the turn's replies only after
``commit()`` returns, so whatever a client or publisher was told was
accepted is on disk (see docs/DURABILITY.md for the exact guarantees). The
one exception waits for a checkpoint (at most a second, and ``close()``): a
session head or next_seq moved only by an acknowledgement, which a crash
loses without losing or repeating anything.

Tables (records are msgpack maps, written with ``protocol.encode_record``)::

    sessions (client_id PK, sid, head, next_seq, dropped_total, dropped_unreported, meta)
    queue    (k = sid << 40 | first seq  PK, last, body)
             one row per session per turn: the (seq, msg_id) pairs queued in
             that turn, packed as 64-bit integers; entries below the
             session's ``head`` or listed in ``holes`` are no longer queued
    queue_groups (id PK, members, body)
             a fan-out's row: the turn's message ids (body) queued for every
             member, ``members`` packed (sid, first seq) pairs, each member's
             entries being seqs first, first + 1…; deleted once every member's
             head passed them (refcounts in memory, rebuilt by load())
    holes    (k = sid << 40 | seq  PK)   entries removed from the middle (conflation)
    messages (id PK, body)              each message once, shared by queues and history
    message_runs (id PK, last, body)    the messages with ids id..last, written in one turn, as one
                                        record ``{"m": [message, ...]}``; collect() moves the survivors
                                        of a mostly dead run to single rows of ``messages``
    channels (name PK, epoch, next_offset, last_used)
    history  (channel, offset, ts, msg_id)   PK (channel, offset)
    jobs     (job_id PK, body)
    meta     (key PK, value)            schema version, newest system_status, the notifier stream position
                                        (``stream``: {epoch: last seq applied}, services/hub/stream.py)
    commands (id PK, body)              one record per command (services/hub/commands.py)

``MemoryStore`` is the ``BRIDGE_STORE=:memory:`` stand-in: same interface,
nothing kept.
"""

import logging
import os
import sqlite3
from array import array
from collections import deque
from operator import itemgetter
from pathlib import Path

from services import protocol
from services.hub.metrics import PUBLISHED_AT
from services.hub.records import EMPTY, Snapshot, StoredChannel, StoredSession

log = logging.getLogger(__name__)

SCHEMA_VERSION = 6  # 5 added message_runs, 6 queue_groups; a schema 4 or 5 file is brought up to it as it is

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sessions (
    client_id TEXT PRIMARY KEY, sid INTEGER NOT NULL, head INTEGER NOT NULL, next_seq INTEGER NOT NULL,
    dropped_total INTEGER NOT NULL, dropped_unreported INTEGER NOT NULL, meta BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS queue (k INTEGER PRIMARY KEY, last INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS queue_groups (id INTEGER PRIMARY KEY, members BLOB NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS holes (k INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS message_runs (id INTEGER PRIMARY KEY, last INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS channels (
    name TEXT PRIMARY KEY, epoch TEXT NOT NULL, next_offset INTEGER NOT NULL, last_used REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (
    channel TEXT NOT NULL, offset INTEGER NOT NULL, ts REAL NOT NULL, msg_id INTEGER NOT NULL,
    PRIMARY KEY (channel, offset)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS jobs (job_id TEXT PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS commands (id TEXT PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID;
"""

# The session attribute holding the client's secret (services/hub/admission.py).
_SECRET = "secret"

# A turn's new messages are stored as runs of at most this many (one row, one encoding each) ...
RUN_MESSAGES = 1000
# ... unless a run's record would be larger than this: then as single rows.
RUN_BYTES = 16 * 1024 * 1024

# Sessions that got the same new messages in one turn (a fan-out) share one queue_groups row when there are
# at least this many of them.
GROUP_MIN = 4

# commit() collects unreferenced messages itself once history forgot an eighth of its byte budget (at least this much)
# since it last did; else the sweep does.
COLLECT_MIN_BYTES = 1 * 2**20

# A queue row's key is (session number << SEQ_BITS) + seq: seqs below 2**40 per session.
SEQ_BITS = 40

# What only an acknowledgement moved (a session's head, and next_seq, which load() derives from the queue
# rows) is written at a checkpoint: at most this often, sooner when this many sessions wait, and at close().
CHECKPOINT_SECONDS = 1.0
CHECKPOINT_SESSIONS = 5000

# SQLite copies its write-ahead log into the database file once the log holds 1 000 pages, inside whichever
# commit passes that mark: a stall of milliseconds in a turn that may carry a poll answer. The hub asks for it
# while it has nothing to do instead (SqliteStore.idle), once this many commits have gone into the log.
IDLE_WAL_COMMITS = 50


_SEQ = itemgetter(0)
_MESSAGE = itemgetter(1)


def _pack_pairs(seqs, mids):
    """A queue row's body: ``[-1, seq, mid, seq, mid…]`` as 64-bit integers."""
    pairs = array("q", bytes(8 + 16 * len(seqs)))
    pairs[0] = -1
    pairs[1::2] = array("q", seqs)
    pairs[2::2] = array("q", mids)
    return pairs.tobytes()


def _unpack_body(first, body):
    """The ``(seq, mid)`` pairs of a queue row: packed pairs, or just the mids of ``first``, ``first + 1``…"""
    values = array("q")
    values.frombytes(body)
    if values and values[0] < 0:
        return zip(values[1::2], values[2::2])
    return zip(range(first, first + len(values)), values)


class StoreError(Exception):
    """The store cannot be opened (locked by another hub, unreadable, newer schema)."""


def open_store(path, synchronous="normal"):
    """``MemoryStore`` for ``:memory:``, else a ``SqliteStore`` at ``path``."""
    if path == ":memory:":
        return MemoryStore()
    return SqliteStore(path, synchronous)


def _session_meta(session):
    meta = {
        "client_type": session.client_type,
        "client_name": session.client_name,
        "connected_at": session.connected_at,
        "subscriptions": sorted(session.subscriptions),
        "info": session.info,
    }
    secret = getattr(session, _SECRET, None)
    if secret is not None:
        meta[_SECRET] = secret
    if session.ephemeral:
        meta["ephemeral"] = True
    if session.reports:  # losses told in replies not confirmed yet: told again after a restart if need be
        meta["reports"] = [list(report) for report in session.reports]
    return protocol.encode_record(meta)


class _Turn:
    """The message ids one transaction gives out: each new message once, shared by queues and history."""

    __slots__ = ("first_mid", "mids", "new_messages", "sids")

    def __init__(self, first_mid):
        self.first_mid = first_mid
        self.mids = {}  # id(message) -> msg_id
        self.new_messages = []  # encoded by _write_messages, a run at a time
        self.sids = {}  # client_id -> session number given this turn

    def mid_of(self, message):
        """A new id for ``message``, stored this turn."""
        mid = self.mids[id(message)] = self.first_mid + len(self.new_messages)
        self.new_messages.append(message)
        return mid


class MemoryStore:
    """No store at all: the state lives and dies with the hub process."""

    path = ":memory:"
    durable = False

    def load(self):
        """Nothing to restore."""
        return EMPTY

    def commit(self, changes):
        """Drop the turn's change set; nothing is written."""
        changes.clear()
        return False

    def idle_due(self):
        """Nothing to do while the hub is idle."""
        return False

    def idle(self):
        """Nothing to do."""

    def collect(self):
        """Nothing to collect."""

    def describe(self):
        """The store as ``/ws/status`` shows it."""
        return {"path": self.path, "durable": False}

    def close(self):
        """Nothing to close."""


class SqliteStore:
    """Writes the hub's changes to SQLite, one transaction per loop turn.

    WAL journal; ``synchronous=normal`` (the default) makes a committed turn
    survive the hub being killed, ``full`` also survives power loss at the
    cost of one fsync per turn. The database is opened in exclusive locking
    mode: a second hub pointed at the same file fails to start instead of
    corrupting the first one's state.
    """

    durable = True

    def __init__(self, path, synchronous="normal", lock_timeout=3.0):
        if synchronous not in ("normal", "full"):
            raise StoreError(f"synchronous must be normal or full, not {synchronous!r}")
        self.path = str(path)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=lock_timeout, check_same_thread=False)
            self.db.execute("PRAGMA locking_mode=EXCLUSIVE")
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(f"PRAGMA synchronous={synchronous.upper()}")
            self.db.execute("PRAGMA temp_store=MEMORY")
            # BEGIN IMMEDIATE takes the exclusive lock now, not at the first change.
            self.db.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
        except sqlite3.Error as ex:
            raise StoreError(f"cannot open the store {self.path}: {ex}") from None
        try:
            os.chmod(self.path, 0o600)  # it holds client secrets
        except OSError:
            pass
        row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None and {c[1] for c in self.db.execute("PRAGMA table_info(queue)")} != {"k", "last", "body"}:
            row = (1,)  # a first-draft file that never recorded its schema
        if row is not None and int(row[0]) > SCHEMA_VERSION:
            raise StoreError(f"the store {self.path} was written by a newer bridge (schema {row[0]})")
        if row is not None and int(row[0]) in (4, 5):
            row = None  # schemas 5 and 6 only added tables, created above
        if row is not None and int(row[0]) < SCHEMA_VERSION:
            # No older layout was ever released; start afresh (clients see new epochs and handshake again).
            log.warning("store %s has the older schema %s: starting with an empty store", self.path, row[0])
            tables = ("meta", "sessions", "queue", "queue_groups", "holes", "messages", "message_runs", "channels",
                      "history", "jobs", "commands")
            self.db.executescript("".join(f"DROP TABLE IF EXISTS {t};" for t in tables) + _SCHEMA)
            row = None
        if row is None:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        self.synchronous = synchronous
        self.sids = {}  # client_id -> session number (the high bits of its queue keys)
        self.next_sid = 1 + (self.db.execute("SELECT COALESCE(MAX(sid), 0) FROM sessions").fetchone()[0])
        self.heads = {}  # client_id -> lowest seq that may still be stored
        self.highs = {}  # client_id -> highest seq stored
        self.metas = {}  # client_id -> the meta record last written
        self.counters = {}  # client_id -> (next_seq, dropped_total, dropped_unreported, head) last written
        self.deferred = {}  # client_id -> Session whose acknowledged head or next_seq waits for the checkpoint
        self.hole_highs = {}  # client_id -> highest seq in the holes table (only clients that have holes)
        self.checkpoint_seconds = CHECKPOINT_SECONDS
        self.checkpoint_sessions = CHECKPOINT_SESSIONS
        self.next_checkpoint = 0.0
        self.next_mid = 1 + max(
            self.db.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()[0],
            self.db.execute("SELECT COALESCE(MAX(last), 0) FROM message_runs").fetchone()[0],
        )
        self.next_gid = 1 + (self.db.execute("SELECT COALESCE(MAX(id), 0) FROM queue_groups").fetchone()[0])
        self.group_refs = {}  # queue_groups id -> members whose entries there are not all below their head
        self.session_groups = {}  # client_id -> deque of (last seq, group id), oldest first
        self.garbage = 0  # references deleted since the last collect()
        self.freed = 0  # history bytes freed since the last collect() commit() caused
        self.commits = 0
        self.wal_commits = 0  # commits in the write-ahead log since it was last copied into the database
        self.failures = 0
        self.last_error = None

    # ---------------------------------------------------------------- load
    def load(self):
        """Everything the database holds, as plain records for ``Hub.restore()``."""
        db = self.db
        messages = {mid: protocol.decode_record(body) for mid, body in db.execute("SELECT id, body FROM messages")}
        for first, _, body in db.execute("SELECT id, last, body FROM message_runs"):
            messages.update(enumerate(protocol.decode_record(body)["m"], first))
        for message in messages.values():
            message.pop(PUBLISHED_AT, None)  # an older release's publish time, stored in the message
        by_sid = {}  # sid -> [client_id, meta, next_seq, dropped_total, dropped_unreported]
        heads = {}
        for cid, sid, head, next_seq, dropped_total, dropped_unreported, meta in db.execute("SELECT * FROM sessions"):
            by_sid[sid] = [cid, protocol.decode_record(meta), next_seq, dropped_total, dropped_unreported]
            self.metas[cid] = meta
            self.sids[cid] = sid
            self.counters[cid] = (next_seq, dropped_total, dropped_unreported, head)
            self.heads[cid] = heads[sid] = head
            self.highs[cid] = 0
        orphans = 0
        holes = {k for (k,) in db.execute("SELECT k FROM holes")}
        for k in holes:
            stored = by_sid.get(k >> SEQ_BITS)
            if stored is not None:
                cid = stored[0]
                self.hole_highs[cid] = max(self.hole_highs.get(cid, 0), k & ((1 << SEQ_BITS) - 1))
        pairs_by_sid = {}  # sid -> [(seq, mid)] from queue rows and groups
        for k, last, body in db.execute("SELECT k, last, body FROM queue ORDER BY k"):
            sid = k >> SEQ_BITS
            stored = by_sid.get(sid)
            if stored is None:
                orphans += 1
                continue
            pairs_by_sid.setdefault(sid, []).extend(_unpack_body(k - (sid << SEQ_BITS), body))
            self.highs[stored[0]] = max(self.highs[stored[0]], last)
        dead_groups = []
        for gid, members, body in db.execute("SELECT id, members, body FROM queue_groups ORDER BY id"):
            mids = array("q")
            mids.frombytes(body)
            pairs = array("q")
            pairs.frombytes(members)
            refs = 0
            for sid, first in zip(pairs[0::2], pairs[1::2]):
                stored = by_sid.get(sid)
                last = first + len(mids) - 1
                if stored is None or last < heads[sid]:
                    continue
                cid = stored[0]
                refs += 1
                self.session_groups.setdefault(cid, deque()).append((last, gid))
                pairs_by_sid.setdefault(sid, []).extend(zip(range(first, last + 1), mids))
                self.highs[cid] = max(self.highs[cid], last)
            if refs:
                self.group_refs[gid] = refs
            else:
                dead_groups.append((gid,))
        if dead_groups:
            db.execute("BEGIN")
            db.executemany("DELETE FROM queue_groups WHERE id=?", dead_groups)
            db.execute("COMMIT")
        sessions = []
        queued = 0
        for sid, (cid, meta, next_seq, dropped_total, dropped_unreported) in by_sid.items():
            base, head = sid << SEQ_BITS, heads[sid]
            pairs = pairs_by_sid.get(sid, [])
            pairs.sort(key=_SEQ)  # rows and groups, each in order
            queue = []
            for seq, mid in pairs:
                message = messages.get(mid)
                if seq >= head and base + seq not in holes and message is not None:
                    queue.append((seq, message))
            queued += len(queue)
            # The stored next_seq may predate the last checkpoint; the queue rows never do.
            next_seq = max(next_seq, self.highs[cid] + 1)
            sessions.append(StoredSession(cid, meta, next_seq, dropped_total, dropped_unreported, queue))
        entries = {}
        for channel, offset, ts, mid in db.execute("SELECT channel, offset, ts, msg_id FROM history ORDER BY channel, offset"):
            if mid in messages:
                entries.setdefault(channel, []).append((offset, ts, messages[mid]))
        channels = [StoredChannel(name, epoch, next_offset, last_used, entries.get(name, []))
                    for name, epoch, next_offset, last_used in db.execute("SELECT * FROM channels")]
        jobs = {key: protocol.decode_record(body) for key, body in db.execute("SELECT job_id, body FROM jobs")}
        row = db.execute("SELECT value FROM meta WHERE key='system_status'").fetchone()
        system_status = None if row is None else protocol.decode_record(row[0])
        row = db.execute("SELECT value FROM meta WHERE key='stream'").fetchone()
        stream = None if row is None else protocol.decode_record(row[0])
        commands = [protocol.decode_record(body) for (body,) in db.execute("SELECT body FROM commands")]
        log.info(
            "store %s: restored %d clients, %d queued messages, %d channels, %d jobs%s",
            self.path, len(sessions), queued, len(channels), len(jobs),
            f" ({orphans} orphan rows skipped)" if orphans else "",
        )
        return Snapshot(sessions, channels, jobs, system_status, stream, commands)

    # -------------------------------------------------------------- commit
    def commit(self, changes):
        """Write the turn's change set (services/hub/changes.py) as one transaction, then clear it.

        Returns ``True`` when something was written. On a database error the
        transaction is rolled back, the change set is kept for the next turn,
        and the error is raised for the server to log. Each table has its
        writer below: it returns its statements and what to remember once
        they are committed.
        """
        deferred = self.deferred
        checkpoint = bool(deferred) and (
            len(deferred) >= self.checkpoint_sessions or changes.clock() >= self.next_checkpoint)
        if not (changes or checkpoint):
            return False
        turn = _Turn(self.next_mid)
        parts = (
            self._write_sessions(changes, checkpoint, turn),
            self._write_queues(changes, turn),
            self._write_history(changes.history, turn),
            self._write_jobs(changes),
            self._write_stream(changes),
            self._write_commands(changes),
            self._write_messages(turn),
        )
        writes = [(sql, rows) for steps, _ in parts for sql, rows in steps if rows]
        db = self.db
        try:
            # A turn of polls whose acks all wait for the checkpoint has nothing to write: no transaction at all.
            if writes:
                db.execute("BEGIN")
                for sql, rows in writes:
                    db.executemany(sql, rows)
                db.execute("COMMIT")
                self.wal_commits += 1
        except sqlite3.Error as ex:
            if db.in_transaction:
                db.execute("ROLLBACK")
            self.failures += 1
            self.last_error = str(ex)
            raise
        # Only now does the database hold these; remember what it holds.
        for _, done in parts:
            if done is not None:
                done()
        self.commits += 1
        self.last_error = None
        self.freed += changes.history.freed
        budget = changes.history.budget
        changes.clear()
        if self.freed >= max(budget // 8, COLLECT_MIN_BYTES):
            # History churns through its byte budget: collect now, not at the next sweep, so the file
            # holds about what the budget allows (docs/DURABILITY.md).
            self.freed = 0
            self.collect()
        return True

    def _write_sessions(self, changes, checkpoint, turn):
        """The ``sessions`` rows: new and dropped sessions, meta, counters; the acknowledged heads' trims.

        Also decides which sessions' counters wait for the checkpoint, and
        which queue rows, holes and groups fall below a head now.
        """
        forgotten = changes.forgotten
        deferred, stored_counters, known_sids = self.deferred, self.counters, self.sids
        sids, heads, metas, counters = turn.sids, {}, {}, {}
        next_sid = self.next_sid
        drop_sessions, drop_ranges = [], []
        for cid in forgotten:
            drop_sessions.append((cid,))
            sid = known_sids.get(cid)
            if sid is not None:
                drop_ranges.append((sid << SEQ_BITS, (sid + 1) << SEQ_BITS))
        upserts, counter_rows, trims, hole_trims, reported = [], [], [], [], []
        defer = []  # sessions whose counters changed only in what may wait for the checkpoint
        released = [(cid, None) for cid in forgotten]  # (client_id, new head): their group references below it go
        unacked_moves, meta_changed = changes.unacked_moves, changes.meta
        sessions = changes.sessions
        if checkpoint:
            sessions = list(sessions)
            sessions.extend(s for s in deferred.values() if s not in changes.sessions)
        for session in sessions:
            cid = session.client_id
            if cid in forgotten:
                continue  # dropped in this turn
            sid = known_sids.get(cid)
            if sid is None:
                sid = sids[cid] = next_sid
                next_sid += 1
            meta = None
            if session in meta_changed or cid in sids or session.reports_dirty:  # only when it may differ
                meta = _session_meta(session)
                if session.reports_dirty:
                    reported.append(session)
                if cid not in sids and meta == self.metas.get(cid):
                    meta = None
            entries = session.queue._entries  # its ends are always live entries (services/hub/queues.py)
            head = entries[0][0] if entries else session.next_seq
            count = (session.next_seq, session.dropped_total, session.dropped_unreported, head)
            if meta is not None:
                upserts.append((cid, sid, head) + count[:3] + (meta,))
                metas[cid] = meta
                counters[cid] = count
            elif count != stored_counters[cid]:
                stored = stored_counters[cid]
                if (checkpoint or session in unacked_moves
                        or count[1] != stored[1] or count[2] != stored[2]):
                    counter_rows.append((head,) + count[:3] + (cid,))
                    counters[cid] = count
                else:
                    # Only an acknowledged head or next_seq moved: neither loses nor repeats anything
                    # if lost (the client's next poll repeats its ack; load() derives next_seq from
                    # the queue rows, which are written now). Written at the checkpoint.
                    defer.append(session)
            if cid in counters and head > self.heads.get(cid, 1):
                base = sid << SEQ_BITS
                trims.append((base, base + head, head))  # rows go only with the next_seq that outlives them
                heads[cid] = head
                released.append((cid, head))
                if cid in self.hole_highs:
                    hole_trims.append((base, base + head))
        gone_groups = self._released_groups(released)
        steps = (
            ("DELETE FROM sessions WHERE client_id=?", drop_sessions),
            ("DELETE FROM queue WHERE k>=? AND k<?", drop_ranges),
            ("DELETE FROM holes WHERE k>=? AND k<?", drop_ranges),
            ("INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?)", upserts),
            ("UPDATE sessions SET head=?, next_seq=?, dropped_total=?, dropped_unreported=? WHERE client_id=?",
             counter_rows),
            ("DELETE FROM queue WHERE k>=? AND k<? AND last<?", trims),
            ("DELETE FROM holes WHERE k>=? AND k<?", hole_trims if trims else ()),
            ("DELETE FROM queue_groups WHERE id=?", gone_groups),
        )

        def done():
            self.next_sid = next_sid
            for cid in forgotten:
                for table in (self.sids, self.heads, self.highs, self.metas, self.counters, self.deferred,
                              self.hole_highs):
                    table.pop(cid, None)
            for cid, head in heads.items():
                if self.hole_highs.get(cid, head) < head:
                    del self.hole_highs[cid]  # every hole below the head was deleted
            self._release_groups(released)
            for session in reported:
                session.reports_dirty = False
            self.garbage += len(gone_groups) + len(drop_sessions) + len(trims)
            if checkpoint:
                deferred.clear()
            else:
                for cid in counters:
                    deferred.pop(cid, None)
            if defer:
                if not deferred:
                    self.next_checkpoint = changes.clock() + self.checkpoint_seconds
                for session in defer:
                    deferred[session.client_id] = session
            self.sids.update(sids)
            self.heads.update(heads)
            self.metas.update(metas)
            self.counters.update(counters)

        return steps, done

    def _write_queues(self, changes, turn):
        """The ``queue``, ``queue_groups`` and ``holes`` rows: what each touched session queued, what conflation
        took out of the middle."""
        forgotten, sids = changes.forgotten, turn.sids
        rows, highs = [], {}
        fanouts = {}  # row body (message ids) -> [(client_id, sid, first, last)]: candidates for queue_groups
        get_mid, mid_of = turn.mids.get, turn.mid_of
        shared = [None, None, None]  # the last fresh messages seen, their ids, the row body
        stored_highs, known_sids = self.highs, self.sids
        for session in changes.sessions:
            # A fan-out brings every subscriber here once per turn: the queue's ends are read directly (they
            # are always live entries, services/hub/queues.py), and the usual case, one entry new this turn,
            # without walking the queue.
            entries = session.queue._entries
            if not entries:
                continue
            cid = session.client_id
            last = entries[-1][0]
            high = stored_highs.get(cid, 0)
            if last > high and cid not in forgotten:
                sid = known_sids.get(cid)
                if sid is None:
                    sid = sids.get(cid)
                highs[cid] = last
                if len(entries) == 1 or entries[-2][0] <= high:
                    fresh = (entries[-1],)
                else:
                    fresh = session.queue.after(high)  # from the newest back: never over earlier turns' entries
                first = fresh[0][0]
                msgs = list(map(_MESSAGE, fresh))
                if msgs != shared[0]:  # a fan-out queues the same messages for every subscriber
                    ids = list(map(get_mid, map(id, msgs)))
                    if None in ids:
                        ids = [mid if mid is not None else mid_of(m) for mid, m in zip(ids, msgs)]
                    shared[:] = [msgs, ids, array("q", ids).tobytes()]
                _, ids, body = shared
                if last - first + 1 != len(fresh):  # a gap (conflation) inside this turn's entries
                    rows.append(((sid << SEQ_BITS) + first, last, _pack_pairs(list(map(_SEQ, fresh)), ids)))
                else:
                    members = fanouts.get(body)
                    if members is None:
                        members = fanouts[body] = []
                    members.append((cid, sid, first, last))
        groups, new_groups = [], []
        next_gid = self.next_gid
        for body, members in fanouts.items():
            if len(members) < GROUP_MIN:
                rows.extend(((sid << SEQ_BITS) + first, last, body) for _, sid, first, last in members)
                continue
            pairs = array("q", [v for _, sid, first, _ in members for v in (sid, first)])
            groups.append((next_gid, pairs.tobytes(), body))
            new_groups.append((next_gid, [(cid, last) for cid, _, _, last in members]))
            next_gid += 1
        holes = []
        hole_highs = {}
        for cid, seq in changes.removed_seqs:
            sid = self.sids.get(cid, sids.get(cid))
            if sid is not None and cid not in forgotten:
                holes.append(((sid << SEQ_BITS) + seq,))
                hole_highs[cid] = max(seq, hole_highs.get(cid, 0), self.hole_highs.get(cid, 0))
        steps = (
            ("INSERT OR IGNORE INTO holes VALUES (?)", holes),
            ("INSERT OR REPLACE INTO queue VALUES (?, ?, ?)", rows),
            ("INSERT INTO queue_groups VALUES (?, ?, ?)", groups),
        )

        def done():
            self.hole_highs.update(hole_highs)
            by_session = self.session_groups
            for gid, members in new_groups:
                self.group_refs[gid] = len(members)
                for cid, last in members:
                    session_groups = by_session.get(cid)
                    if session_groups is None:
                        session_groups = by_session[cid] = deque()
                    session_groups.append((last, gid))
            self.next_gid = next_gid
            self.highs.update(highs)
            self.garbage += len(holes)

        return steps, done

    def _write_history(self, history, turn):
        """The ``channels`` and ``history`` rows: new channels and offsets, kept messages, trims, evictions."""
        get_mid, mid_of = turn.mids.get, turn.mid_of
        history_rows = []
        for channel, offset, ts, message in history.added:
            if channel in history.meta and offset >= history.trimmed.get(channel, 0):
                mid = get_mid(id(message))
                history_rows.append((channel, offset, ts, mid if mid is not None else mid_of(message)))
        channel_rows = [(name, ch.epoch, ch.next_offset, ch.last_used) for name, ch in history.meta.items()]
        gone = [(name,) for name in history.removed]
        trimmed = list(history.trimmed.items())
        steps = (
            ("DELETE FROM history WHERE channel=?", gone),
            ("DELETE FROM channels WHERE name=?", gone),
            ("INSERT OR REPLACE INTO channels VALUES (?, ?, ?, ?)", channel_rows),
            ("DELETE FROM history WHERE channel=? AND offset<?", trimmed),
            ("INSERT OR REPLACE INTO history VALUES (?, ?, ?, ?)", history_rows),
        )

        def done():
            self.garbage += len(trimmed) + len(gone)

        return steps, done

    def _write_jobs(self, changes):
        """The ``jobs`` rows and the newest ``system_status``."""
        encode = protocol.encode_record
        system = changes.system_status
        steps = (
            ("DELETE FROM jobs WHERE job_id=?", [(k,) for k in changes.jobs_removed]),
            ("INSERT OR REPLACE INTO jobs VALUES (?, ?)", [(k, encode(s)) for k, s in changes.jobs.items()]),
            ("INSERT OR REPLACE INTO meta VALUES ('system_status', ?)", [(encode(system),)] if system else ()),
        )
        return steps, None

    def _write_stream(self, changes):
        """The notifier stream position: it commits with the state its events changed."""
        stream = changes.stream
        rows = [(protocol.encode_record(dict(stream)),)] if stream is not None else ()
        return (("INSERT OR REPLACE INTO meta VALUES ('stream', ?)", rows),), None

    def _write_commands(self, changes):
        """The ``commands`` rows: each command's record as it changed this turn (services/hub/commands.py)."""
        encode = protocol.encode_record
        steps = (
            ("DELETE FROM commands WHERE id=?", [(k,) for k in changes.commands_removed]),
            ("INSERT OR REPLACE INTO commands VALUES (?, ?)", [(k, encode(r)) for k, r in changes.commands.items()]),
        )
        return steps, None

    def _write_messages(self, turn):
        """The ``message_runs`` (and, for a run too large, ``messages``) rows: every message first stored this turn.

        Called after every writer that may give a message its id.
        """
        new_messages = turn.new_messages
        encode = protocol.encode_record
        runs, singles = [], []
        for start in range(0, len(new_messages), RUN_MESSAGES):
            run = new_messages[start:start + RUN_MESSAGES]
            first = turn.first_mid + start
            parts = [getattr(m, "packed", None) for m in run]  # encoded once already (channel history)
            body = protocol.encode_run_record(parts) if None not in parts else encode({"m": run})
            if len(body) <= RUN_BYTES or len(run) == 1:
                runs.append((first, first + len(run) - 1, body))
            else:
                singles.extend(zip(range(first, first + len(run)), map(encode, run)))
        steps = (
            ("INSERT INTO message_runs VALUES (?, ?, ?)", runs),
            ("INSERT INTO messages (id, body) VALUES (?, ?)", singles),
        )

        def done():
            self.next_mid += len(new_messages)

        return steps, done

    def collect(self):
        """Delete stored messages no queue row and no history refers to any more (from the sweep).

        Reads every queue row's ids (bounded by the queues' total size): a
        superset of what is still queued, since a row goes only once its
        last entry was acknowledged, so nothing live is ever collected. A
        run goes when none of its messages is live; when fewer than half are,
        those move to single rows, so runs hold at most twice what is live.
        """
        if not self.garbage:
            return 0
        db = self.db
        live = set()
        for (body,) in db.execute("SELECT body FROM queue UNION ALL SELECT body FROM queue_groups"):
            values = array("q")
            values.frombytes(body)
            live.update(values)
        live.update(mid for (mid,) in db.execute("SELECT msg_id FROM history"))
        dead = [(mid,) for (mid,) in db.execute("SELECT id FROM messages") if mid not in live]
        dead_runs, moved = [], []
        collected = len(dead)
        for first, last in db.execute("SELECT id, last FROM message_runs").fetchall():
            kept = [mid for mid in range(first, last + 1) if mid in live]
            if 2 * len(kept) >= last - first + 1:
                continue
            dead_runs.append((first,))
            collected += last - first + 1 - len(kept)
            if kept:
                (body,) = db.execute("SELECT body FROM message_runs WHERE id=?", (first,)).fetchone()
                run = protocol.decode_record(body)["m"]
                moved.extend((mid, protocol.encode_record(run[mid - first])) for mid in kept)
        if dead or dead_runs:
            try:
                db.execute("BEGIN")
                db.executemany("DELETE FROM messages WHERE id=?", dead)
                db.executemany("INSERT INTO messages (id, body) VALUES (?, ?)", moved)
                db.executemany("DELETE FROM message_runs WHERE id=?", dead_runs)
                db.execute("COMMIT")
            except sqlite3.Error as ex:  # the garbage stays for the next sweep
                if db.in_transaction:
                    db.execute("ROLLBACK")
                log.warning("store: collecting unreferenced messages failed: %s", ex)
                return 0
        self.garbage = 0
        return collected

    def idle_due(self):
        """Whether ``idle()`` has work: enough commits went into the write-ahead log since it last ran."""
        return self.wal_commits >= IDLE_WAL_COMMITS

    def idle(self):
        """The hub has nothing to do: copy the write-ahead log into the database now (a passive checkpoint),
        so SQLite's own, at 1 000 pages, seldom falls inside a busy turn."""
        self.wal_commits = 0
        try:
            self.db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as ex:  # SQLite's own checkpoint still runs in time
            log.debug("store: idle checkpoint failed: %s", ex)

    def counts(self):
        """Rows per table, and for ``messages`` the messages stored (tests use it to show the store is bounded)."""
        tables = ("sessions", "queue", "queue_groups", "holes", "messages", "message_runs", "channels", "history",
                  "jobs", "commands")
        counts = {t: self.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}
        counts["messages"] += self.db.execute("SELECT COALESCE(SUM(last - id + 1), 0) FROM message_runs").fetchone()[0]
        return counts

    def describe(self):
        """The store as ``/ws/status`` shows it."""
        info = {"path": self.path, "durable": True, "synchronous": self.synchronous,
                "commits": self.commits, "failures": self.failures}
        if self.last_error:
            info["last_error"] = self.last_error
        return info

    def _released_groups(self, released):
        """The queue_groups ids whose last reference goes with ``released``, changing nothing yet.

        ``released`` holds ``(client_id, head)``: that session's entries below
        ``head`` (all of them for ``None``) are no longer needed.
        """
        taken, gone = {}, []
        for cid, head in released:
            for last, gid in self.session_groups.get(cid, ()):
                if head is not None and last >= head:
                    break
                n = taken[gid] = taken.get(gid, 0) + 1
                if n == self.group_refs[gid]:
                    gone.append((gid,))
        return gone

    def _release_groups(self, released):
        """Drop the references ``released`` names, once the transaction that follows from them committed."""
        refs, by_session = self.group_refs, self.session_groups
        for cid, head in released:
            groups = by_session.get(cid)
            while groups and (head is None or groups[0][0] < head):
                gid = groups.popleft()[1]
                if refs[gid] > 1:
                    refs[gid] -= 1
                else:
                    del refs[gid]
            if groups is not None and not groups:
                del by_session[cid]

    def checkpoint(self):
        """Write the heads and counters that wait for the checkpoint now (``close()`` does this).

        Call it after the last ``commit()``: it writes what the sessions hold
        now, as a commit would at a checkpoint.
        """
        if not self.deferred:
            return
        counter_rows, trims, hole_trims, released = [], [], [], []
        for cid, session in self.deferred.items():
            queue = session.queue
            head = queue[0][0] if queue else session.next_seq
            counter_rows.append((head, session.next_seq, session.dropped_total, session.dropped_unreported, cid))
            if head > self.heads.get(cid, 1):
                base = self.sids[cid] << SEQ_BITS
                trims.append((base, base + head, head))
                released.append((cid, head))
                if cid in self.hole_highs:
                    hole_trims.append((base, base + head))
        db = self.db
        db.execute("BEGIN")
        db.executemany(
            "UPDATE sessions SET head=?, next_seq=?, dropped_total=?, dropped_unreported=? WHERE client_id=?",
            counter_rows,
        )
        db.executemany("DELETE FROM queue WHERE k>=? AND k<? AND last<?", trims)
        db.executemany("DELETE FROM holes WHERE k>=? AND k<?", hole_trims)
        db.executemany("DELETE FROM queue_groups WHERE id=?", self._released_groups(released))
        db.execute("COMMIT")
        self._release_groups(released)
        for head, next_seq, dropped_total, dropped_unreported, cid in counter_rows:
            self.counters[cid] = (next_seq, dropped_total, dropped_unreported, head)
            self.heads[cid] = max(self.heads.get(cid, 1), head)
        self.deferred.clear()

    def close(self):
        """Write the pending checkpoint, checkpoint the WAL into the database file and close it."""
        try:
            self.checkpoint()
        except sqlite3.Error as ex:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            log.warning("store: writing the last acknowledgements at exit failed: %s", ex)
        try:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as ex:
            log.warning("store checkpoint at exit failed: %s", ex)
        self.db.close()
