"""The hub's SQLite store by plain calls: restore after a restart, pruning, a 24 h soak (injected clocks)."""

import itertools
import os

import pytest

from services import protocol
from services.hub.config import HubConfig
from services.hub.hub import Hub
from services.hub.store import SqliteStore, StoreError
from services.hub.requests import PollRequest


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


class Rig:
    """A hub on a store file, restartable: ``restart()`` drops the hub without a clean close."""

    def __init__(self, path, **config):
        self.path = str(path)
        self.config = HubConfig(**{"queue_size": 100, "stale_seconds": 600, **config})
        self.mono = Clock(1000.0)
        self.wall = Clock(1_700_000_000.0)
        self.ids = (f"client-{n}" for n in itertools.count(1))
        self.replies = []
        self.start()

    def start(self):
        self.store = SqliteStore(self.path)
        self.hub = Hub(self.config, lambda *a: self.replies.append(a), clock=self.mono, wallclock=self.wall,
                       new_id=lambda: next(self.ids), store=self.store)
        self.hub.restore(self.store.load())
        return self.hub

    def commit(self):
        return self.store.commit(self.hub.changes)

    def restart(self):
        """Like SIGKILL: whatever was not committed is gone; the file lock is released."""
        self.store.db.close()
        return self.start()

    def client(self, channels=()):
        session = self.hub.create_session("lightroom")
        self.hub.subscribe(session, list(channels))
        self.hub.poll(session, PollRequest(b"gw", 0, 0, None))  # drain the welcome
        return session

    def poll(self, client_id, ack=None):
        return self.hub.poll(self.hub.sessions[client_id], PollRequest(b"gw", 1, 0, ack))["messages"]

    def conflated_client(self):
        """A client on ``jobs`` (queue of 3) given jobs a, b, c, then a newer b that replaces the old one."""
        s = self.client(["jobs"])
        for n, job in enumerate(("a", "b", "c")):
            self.hub.publish(protocol.TARGET_CHANNEL, {"type": "job_progress", "job_id": job, "n": n}, "jobs")
        self.commit()
        self.hub.publish(protocol.TARGET_CHANNEL, {"type": "job_progress", "job_id": "b", "n": 3}, "jobs")
        self.commit()
        return s


@pytest.fixture
def rig(tmp_path):
    rig = Rig(tmp_path / "hub.sqlite3")
    yield rig
    rig.store.db.close()


def publish(hub, n, channel="jobs", kind="step"):
    for i in range(n):
        hub.publish(protocol.TARGET_CHANNEL, {"type": kind, "n": i}, channel)


def test_sessions_queues_and_subscriptions_survive_a_restart(rig):
    a = rig.client(["jobs"])
    b = rig.client(["photos"])
    secret = a.secret
    publish(rig.hub, 5)
    publish(rig.hub, 2, "photos")
    rig.commit()
    assert [m["n"] for m in rig.poll(a.client_id, ack=1)] == [0, 1, 2, 3, 4]  # kept until acked
    rig.poll(a.client_id, ack=4)  # the client has seqs 2..4
    rig.commit()
    publish(rig.hub, 3)  # never committed: lost with the "crash", and never acknowledged to anyone
    hub = rig.restart()
    a2, b2 = hub.sessions[a.client_id], hub.sessions[b.client_id]
    assert a2.secret == secret and a2.subscriptions == {"jobs"} and b2.subscriptions == {"photos"}
    assert hub.channels["jobs"] == {a2}
    # The ack of 2..4 waited for the store's checkpoint (a second), which the crash came before:
    # they are queued again, and the client's next poll repeats that ack, so it sees no duplicate.
    assert [seq for seq, _ in a2.queue] == [2, 3, 4, 5, 6] and a2.next_seq == 7
    msgs = rig.poll(a.client_id, ack=4)
    assert [(m["seq"], m["n"]) for m in msgs] == [(5, 3), (6, 4)]
    assert [m["n"] for m in rig.poll(b.client_id)] == [0, 1]
    publish(hub, 1)
    assert [m["seq"] for m in rig.poll(a.client_id, ack=6)] == [7]  # seq continues


def test_dropped_clients_and_acked_messages_leave_the_database(rig):
    clients = [rig.client(["jobs"]) for _ in range(3)]
    publish(rig.hub, 50)
    rig.commit()
    assert rig.store.counts()["queue"] == 3 and rig.store.counts()["messages"] == 50  # a row per client and turn
    rig.hub.drop_client(clients[0], "test")
    rig.poll(clients[1].client_id, ack=1000)
    rig.commit()
    assert rig.store.counts()["queue"] == 2  # an acknowledgement is written at the store's checkpoint
    rig.mono.advance(rig.store.checkpoint_seconds)
    rig.commit()
    rig.store.collect()
    counts = rig.store.counts()
    assert counts["sessions"] == 2 and counts["queue"] == 1 and counts["messages"] == 50
    rig.poll(clients[2].client_id)  # drain mode
    rig.wall.advance(rig.config.history_seconds + 1)
    rig.hub.prune()  # the history's time limit passed
    rig.commit()
    rig.store.collect()
    counts = rig.store.counts()
    assert counts["queue"] == 0 and counts["history"] == 0 and counts["messages"] == 0


def test_history_offsets_epoch_and_recovery_survive_a_restart(rig):
    s = rig.client(["jobs"])
    publish(rig.hub, 10)
    msgs = rig.poll(s.client_id)
    last = msgs[-1]
    assert [m["offset"] for m in msgs] == list(range(1, 11)) and last["epoch"]
    rig.hub.drop_client(s, "went away")
    publish(rig.hub, 5)
    rig.commit()
    hub = rig.restart()
    back = rig.client()
    reports = hub.recover(back, {"jobs": (last["offset"], last["epoch"])}, 1000)
    assert reports["jobs"]["recovered"] is True and reports["jobs"]["replayed"] == 5
    assert [m["offset"] for m in rig.poll(back.client_id)] == [11, 12, 13, 14, 15]


def test_deleting_the_store_starts_a_new_epoch(rig, tmp_path):
    s = rig.client(["jobs"])
    publish(rig.hub, 3)
    old = rig.poll(s.client_id)[-1]
    rig.commit()
    rig.store.db.close()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(rig.path + suffix):
            os.remove(rig.path + suffix)
    hub = rig.start()
    assert hub.sessions == {}
    s = rig.client(["jobs"])
    publish(hub, 2)
    report = hub.recover(s, {"jobs": (old["offset"], old["epoch"])}, 1000)["jobs"]
    assert report["epoch_changed"] is True and report["recovered"] is False and report["lost"] is None
    assert report["epoch"] != old["epoch"]


def test_a_second_hub_on_the_same_file_is_refused(rig):
    with pytest.raises(StoreError, match="locked"):
        SqliteStore(rig.path, lock_timeout=0.1)


def test_job_states_and_system_status_survive_a_restart(rig):
    hub = rig.hub
    hub.publish(protocol.TARGET_CHANNEL, {"type": "job_created", "job_id": "j1", "name": "Import"}, "jobs")
    hub.publish(protocol.TARGET_CHANNEL, {"type": "job_progress", "job_id": "j1", "progress": 40, "stage": "scan"}, "jobs")
    hub.publish(protocol.TARGET_CHANNEL, {"type": "job_completed", "job_id": 7, "result": {"n": 1}}, "jobs")
    hub.publish(protocol.TARGET_CHANNEL, {"type": "system_status", "status": {"cpu_usage": 12}}, "system")
    rig.commit()
    hub = rig.restart()
    assert hub.jobs.get("j1")["status"] == "running" and hub.jobs.get("j1")["progress"] == 40
    assert hub.jobs.get("7")["status"] == "completed" and hub.jobs.get("7")["result"] == {"n": 1}
    assert hub.jobs.system_status["status"] == {"cpu_usage": 12}


def test_store_stays_bounded_over_a_simulated_day(tmp_path):
    rig = Rig(tmp_path / "soak.sqlite3", history_size=200, history_seconds=3600, stale_seconds=300,
              jobs_max=50, jobs_keep_seconds=1800, queue_size=20)
    hub = rig.hub
    sizes = []
    job = 0
    steady = None
    for minute in range(24 * 60):
        rig.mono.advance(60)
        rig.wall.advance(60)
        if minute % 10 == 0:  # a client comes and goes away without a word every 10 minutes
            rig.client(["jobs", f"ch{minute % 7}"])
        job += 1
        for kind in ("job_created", "job_progress", "job_completed"):
            hub.publish(protocol.TARGET_CHANNEL, {"type": kind, "job_id": job, "progress": 50}, "jobs")
        publish(hub, 5, f"ch{minute % 7}", "photo_imported")
        rig.commit()
        if minute % 5 == 0:  # the stale sweep
            hub.remove_stale(rig.config.stale_seconds)
            hub.prune()
            rig.commit()
            rig.store.collect()
        if minute == 6 * 60:
            steady = os.path.getsize(rig.path) + os.path.getsize(rig.path + "-wal")
        sizes.append(rig.store.counts())
    last = sizes[-1]
    assert last["sessions"] <= 1 + 300 // 600 + 1
    assert last["history"] <= 8 * 200 and last["jobs"] <= 50
    queued = sum(len(s.queue) for s in hub.sessions.values())
    assert last["messages"] <= last["history"] + queued + 8 * 5 * 5  # plus at most one sweep interval of traffic
    assert max(s["history"] for s in sizes[6 * 60:]) <= 8 * 200
    end = os.path.getsize(rig.path) + os.path.getsize(rig.path + "-wal")
    assert end <= 2 * steady, (steady, end)  # the file stopped growing after the first hours
    rig.store.db.close()


def test_a_conflated_entry_stays_gone_after_a_restart(tmp_path):
    rig = Rig(tmp_path / "holes.sqlite3", queue_size=3)
    s = rig.conflated_client()
    before = [(seq, m["n"]) for seq, m in s.queue]
    hub = rig.restart()
    assert [(seq, m["n"]) for seq, m in hub.sessions[s.client_id].queue] == before == [(2, 0), (4, 2), (5, 3)]
    rig.store.db.close()
