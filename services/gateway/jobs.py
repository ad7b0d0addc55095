"""GET /ws/jobs and /ws/jobs/{job_id}: the latest state of each job, as the hub keeps it.

For a dashboard or a script arriving late; a subscribed client gets the same
states as a ``jobs_snapshot`` message (docs/DURABILITY.md).
"""

from services import protocol
from services.gateway.inputs import InputError
from services.gateway.resources import _Resource, ok

MAX_JOB_ID = 200


class Jobs(_Resource):
    """GET /ws/jobs: every job the hub knows (running ones, and finished ones for a while)."""

    async def on_get(self, req, resp):
        reply = await self.hub.request(protocol.OP_JOBS)
        answer = {"jobs": reply["jobs"], "count": reply["count"], "system_status": reply.get("system_status")}
        if reply.get("left_out"):  # older jobs past the 1 MiB answer: each is still read by its id
            answer["left_out"] = reply["left_out"]
        ok(resp, answer)


class Job(_Resource):
    """GET /ws/jobs/{job_id}: one job's state; 404 (code ``unknown_job``) when the hub has none."""

    async def on_get(self, req, resp, job_id):
        if not job_id or len(job_id) > MAX_JOB_ID:
            raise InputError(400, f"job_id must be 1 to {MAX_JOB_ID} characters", "job_id")
        reply = await self.hub.request(protocol.OP_JOBS, job_id=job_id)
        ok(resp, {"job": reply["job"]})
