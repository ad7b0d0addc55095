"""The hub's job table as read: idle time, duration and ``stalled`` (BRIDGE_JOB_STALE_SECONDS), by plain calls."""

from services.hub.jobs import Jobs


class Wall:
    def __init__(self, now=1_700_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def test_a_running_job_with_no_event_for_the_stale_time_is_stalled_until_its_next_event():
    wall = Wall()
    jobs = Jobs(100, 3600, wall, stale_seconds=120)
    jobs.observe({"type": "job_started", "job_id": "j1", "stage": "scan"})
    wall.now += 119.9
    job = jobs.get("j1")
    assert job["stalled"] is False and job["idle_seconds"] == 119.9
    wall.now += 0.1
    assert jobs.get("j1")["stalled"] is True
    assert [j["stalled"] for j in jobs.listing()[0]] == [True]
    jobs.observe({"type": "job_progress", "job_id": "j1", "progress": 50})
    job = jobs.get("j1")
    assert job["stalled"] is False and job["idle_seconds"] == 0 and job["duration_seconds"] == 120


def test_a_finished_job_is_never_stalled_and_its_duration_stops_at_its_end():
    wall = Wall()
    jobs = Jobs(100, 3600, wall, stale_seconds=5)
    jobs.observe({"type": "job_created", "job_id": 7, "name": "Export"})
    wall.now += 30
    jobs.observe({"type": "job_failed", "job_id": 7, "error": {"code": "disk_full", "message": "no space"}})
    wall.now += 600
    job = jobs.get("7")
    assert job["status"] == "failed" and job["stalled"] is False
    assert job["duration_seconds"] == 30 and job["idle_seconds"] == 600
    assert job["error"] == {"code": "disk_full", "message": "no space"}


def test_bookkeeping_fields_stay_out_of_what_is_read():
    jobs = Jobs(100, 3600, Wall())
    jobs.observe({"type": "job_progress", "job_id": "a", "progress": 1})
    assert not [k for k in jobs.get("a") if k.startswith("_")]
    assert "stalled" not in jobs.jobs["a"]  # worked out when read, never stored


def test_a_state_stored_without_its_first_event_time_reads_without_a_duration():
    wall = Wall()
    jobs = Jobs(100, 3600, wall)
    jobs.load("old", {"job_id": "old", "status": "running", "_touched": wall.now - 500})
    job = jobs.get("old")
    assert job["duration_seconds"] is None and job["stalled"] is True and job["idle_seconds"] == 500


def test_a_job_first_heard_of_at_its_end_has_no_duration():
    jobs = Jobs(100, 3600, Wall())
    jobs.observe({"type": "job_failed", "job_id": "late", "error": "gone"})
    assert jobs.get("late")["duration_seconds"] is None
