"""Shared by the plug-in's system tests: fast client settings, publishing progress, reading what arrived.

The ``lua_clients`` fixture is in tests/system/conftest.py.
"""

# Short waits so that faults are noticed in a second, not in the default 25 s hold.
FAST = {"POLL_WAIT": 2, "RECONNECT_DELAY": 0.2, "RECONNECT_MAX_DELAY": 1, "PING_INTERVAL": 1}


def notify_progress(stack, job_id, progress=50):
    """Publish a job_progress on ``jobs`` through the gateway; returns how many clients took it."""
    r = stack.post("/ws/notify/job_progress", {"job_id": job_id, "progress": progress, "stage": "s"})
    assert r.status == 200, r
    return r.json["delivered"]


def progress_ids(client):
    """The job ids of the job_progress messages the Lua client's listeners heard, in order."""
    return [e["data"]["job_id"] for e in client.of("listener", "job_progress")]
