"""Channel history and recovery, job snapshots with no gap, conflation for slow clients: real processes."""

import os
import threading
import time

from tests.system.durable_support import Publisher


def subscribe(stack, cid, channels, **extra):
    r = stack.post("/ws/send", {"client_id": cid, "message": {"type": "subscribe", "channels": channels, **extra}})
    assert r.status == 200, r
    return r.json["response"]


def drain(stack, cid, limit=100_000):
    """Every queued message, polling with ack until the queue is empty."""
    out, ack = [], 0
    while len(out) < limit:
        msgs = stack.poll(cid, ack=ack).json["messages"]
        if not msgs:
            return out
        out.extend(msgs)
        ack = msgs[-1]["seq"]
    return out


def publish_many(stack, count, channel, make):
    pub = Publisher(stack.env["BRIDGE_HUB_RPC"])
    try:
        for n in range(count):
            pub.send(n, make(n), channel)
        assert pub.drain(time.monotonic() + 20)
        assert len(pub.acked) == count
    finally:
        pub.close()


def test_a_client_away_for_2000_messages_recovers_all_of_them(stack_factory):
    stack = stack_factory({"BRIDGE_HISTORY_SIZE": "3000"})
    cid = stack.handshake("lightroom", ["photos"])
    publish_many(stack, 10, "photos", lambda n: {"type": "photo_imported", "photo_id": n})
    seen = drain(stack, cid)
    last = seen[-1]
    assert [m["offset"] for m in seen] == list(range(1, 11)) and all(m["epoch"] == last["epoch"] for m in seen)
    assert stack.post("/ws/disconnect", {"client_id": cid}).status == 200  # Lightroom closed

    publish_many(stack, 2000, "photos", lambda n: {"type": "photo_imported", "photo_id": 10 + n})

    back = stack.handshake("lightroom")
    reply = subscribe(stack, back, ["photos"], recover={"photos": {"offset": last["offset"], "epoch": last["epoch"]}})
    assert reply["recovery"]["photos"] == {"recovered": True, "replayed": 2000, "lost": 0, "epoch_changed": False,
                                           "offset": 2010, "epoch": last["epoch"]}
    assert reply["positions"]["photos"] == {"offset": 2010, "epoch": last["epoch"]}
    publish_many(stack, 1, "photos", lambda n: {"type": "photo_imported", "photo_id": "live"})
    got = drain(stack, back)
    assert [m["offset"] for m in got] == list(range(11, 2012))  # the missed ones, then live, no gap
    assert [m["photo_id"] for m in got[:3]] == [10, 11, 12] and got[-1]["photo_id"] == "live"


def test_a_client_away_longer_than_the_history_is_told_how_many_are_gone(stack_factory):
    stack = stack_factory({"BRIDGE_HISTORY_SIZE": "500"})
    cid = stack.handshake("lightroom", ["photos"])
    position = subscribe(stack, cid, ["photos"])["positions"]["photos"]
    assert position["offset"] == 0
    stack.post("/ws/disconnect", {"client_id": cid})
    publish_many(stack, 800, "photos", lambda n: {"type": "photo_imported", "photo_id": n})
    back = stack.handshake("lightroom")
    reply = subscribe(stack, back, ["photos"], recover={"photos": position})
    report = reply["recovery"]["photos"]
    assert (report["recovered"], report["replayed"], report["lost"]) == (False, 500, 300)
    assert [m["offset"] for m in drain(stack, back)] == list(range(301, 801))


def test_a_deleted_store_means_a_new_epoch_the_client_is_told_then_gets_new_messages(stack_factory):
    stack = stack_factory()
    cid = stack.handshake("lightroom", ["jobs"])
    stack.post("/ws/broadcast", {"message": {"type": "step"}, "channel": "jobs"})
    old = drain(stack, cid)[-1]
    assert stack.stop("hub") == 0
    store = stack.env["BRIDGE_STORE"]
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(store + suffix):
            os.remove(store + suffix)
    stack.start("hub")
    stack.wait_ready()
    assert stack.poll(cid).status == 404  # the session went with the store: handshake again
    back = stack.handshake("lightroom")
    reply = subscribe(stack, back, ["jobs"], recover={"jobs": {"offset": old["offset"], "epoch": old["epoch"]}})
    report = reply["recovery"]["jobs"]
    assert report["epoch_changed"] is True and report["recovered"] is False and report["lost"] is None
    assert report["epoch"] != old["epoch"]
    stack.post("/ws/broadcast", {"message": {"type": "step", "n": "new"}, "channel": "jobs"})
    msgs = drain(stack, back)
    # An incomplete recovery of "jobs" brings the latest job states first, then what is new.
    assert [m["type"] for m in msgs] == ["jobs_snapshot", "step"]
    assert msgs[1]["epoch"] == report["epoch"] and msgs[1]["offset"] == 1


def test_bad_recovery_positions_get_a_clear_400(stack):
    cid = stack.handshake()
    for recover in ({"jobs": {"offset": -1, "epoch": "x"}}, {"jobs": {"offset": 1}}, {"other": {"offset": 1, "epoch": "x"}},
                    "jobs", {"jobs": 5}):
        r = stack.post("/ws/send", {"client_id": cid, "message": {"type": "subscribe", "channels": ["jobs"],
                                                                 "recover": recover}})
        assert r.status == 400 and r.json["success"] is False and r.json["field"] == "recover", (recover, r)
    r = stack.post("/ws/send", {"client_id": cid, "message": {"type": "subscribe", "channels": ["jobs"], "recover": []}})
    assert r.status == 200  # Lua's empty table


def test_jobs_snapshot_then_live_has_no_gap_and_no_duplicate_while_progress_races(stack_factory):
    stack = stack_factory({"BRIDGE_QUEUE_SIZE": "30000"})  # no overflow: conflation must not hide a gap
    stop = threading.Event()
    published = []

    def progress():
        pub = Publisher(stack.env["BRIDGE_HUB_RPC"], window=20)
        n = 0
        while not stop.is_set() and n < 20_000:
            job = f"job-{n % 3}"
            pub.send(n, {"type": "job_progress", "job_id": job, "progress": (n // 3) % 100, "n": n}, "jobs")
            n += 1
        pub.drain(time.monotonic() + 10)
        published.append(n)
        pub.close()

    thread = threading.Thread(target=progress)
    thread.start()
    try:
        clients = []
        for _ in range(8):
            cid = stack.handshake("lightroom")
            reply = subscribe(stack, cid, ["jobs"], snapshot=True)
            clients.append((cid, reply))
    finally:
        stop.set()
        thread.join(30)
    assert published and published[0] > 0
    checked = 0
    for cid, reply in clients:
        msgs = drain(stack, cid)
        snap = msgs[0]
        assert snap["type"] == "jobs_snapshot" and snap["epoch"] == reply["positions"]["jobs"]["epoch"]
        assert snap["offset"] == reply["positions"]["jobs"]["offset"]
        live = [m["offset"] for m in msgs[1:]]
        assert live == list(range(snap["offset"] + 1, snap["offset"] + 1 + len(live)))  # no gap, no duplicate
        by_job = {j["job_id"]: j for j in snap["jobs"]}
        for job in by_job.values():  # the snapshot is the state as of its offset
            assert job["offset"] <= snap["offset"] and job["status"] == "running"
        checked += len(live) > 0
    assert checked >= 1  # at least one client subscribed while progress was flowing

    r = stack.get("/ws/jobs")
    assert r.status == 200 and r.json["count"] == 3 and {j["job_id"] for j in r.json["jobs"]} == {"job-0", "job-1", "job-2"}
    one = stack.get("/ws/jobs/job-1")
    assert one.status == 200 and one.json["job"]["status"] == "running"
    missing = stack.get("/ws/jobs/nope")
    assert missing.status == 404 and missing.json["code"] == "unknown_job" and missing.json["success"] is False


def test_a_slow_client_gets_every_completion_and_the_latest_progress_of_each_job(stack_factory):
    stack = stack_factory({"BRIDGE_QUEUE_SIZE": "100"})
    cid = stack.handshake("lightroom", ["jobs"])
    jobs = ["a", "b", "c"]
    last_progress = {}

    def make(n):
        if n < 10_000:
            job = jobs[n % 3]
            last_progress[job] = n
            return {"type": "job_progress", "job_id": job, "progress": round(n / 100, 2), "n": n}
        return {"type": "job_completed", "job_id": jobs[n - 10_000], "result": {"ok": True}}

    publish_many(stack, 10_003, "jobs", make)  # the client polls nothing meanwhile
    msgs = drain(stack, cid)
    completed = [m["job_id"] for m in msgs if m["type"] == "job_completed"]
    assert sorted(completed) == jobs
    newest = {}
    for m in msgs:
        if m["type"] == "job_progress":
            newest[m["job_id"]] = m["n"]
    assert newest == last_progress
    # Every gap in the seqs is counted as dropped (the first poll reports it).
    seqs = [m["seq"] for m in msgs]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    status = stack.get("/ws/jobs").json
    assert {j["job_id"]: j["status"] for j in status["jobs"]} == {"a": "completed", "b": "completed", "c": "completed"}
