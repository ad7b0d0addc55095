"""An example backend: a simulated photo-processing pipeline that talks to the plugin.

Run it beside ``make run`` (docs/BACKENDS.md shows how to watch with curl)::

    .venv/bin/python examples/pipeline.py                 # one good job, one failing job, then listen 30 s
    .venv/bin/python examples/pipeline.py --steps 20 --delay 0.5 --listen 0

For each good job it publishes job_created -> job_started -> job_progress xN
(with a photo_imported and photo_analyzed per step) -> job_completed; the
failing job stops halfway with job_failed. Meanwhile it prints every message
a plugin client sends (job_progress, job_complete, error...) with the
sender's identity. Endpoints come from BRIDGE_NOTIFIER_RPC and
BRIDGE_CLIENT_EVENTS, as for every backend.
"""

import argparse
import sys
import time
import uuid

from services.notifier.client import Listener, get_websocket_fallback


def show(what, sent):
    print(f"sent  {what}{'' if sent else '   (DROPPED: is the notifier running?)'}", flush=True)


def run_job(ws, steps, delay, fail_at=None):
    """One simulated job; ``fail_at`` is the step where it fails (``None``: it completes)."""
    job_id = f"job-{uuid.uuid4().hex[:8]}"
    show(f"job_created   {job_id}", ws.job_created(job_id, job_type="analysis", name="Analyse photos", total=steps))
    show(f"job_started   {job_id}", ws.job_started(job_id, stage="loading"))
    for step in range(1, steps + 1):
        time.sleep(delay)
        photo_id = f"{job_id}-photo-{step}"
        show(f"photo_imported {photo_id}", ws.photo_imported(photo_id, path=f"/photos/{photo_id}.dng", job_id=job_id))
        if fail_at is not None and step == fail_at:
            show(f"job_failed    {job_id}", ws.job_failed(job_id, {"code": "model_error", "photo_id": photo_id,
                                                                   "message": "the analysis model ran out of memory"}))
            return job_id
        show(f"photo_analyzed {photo_id}", ws.photo_analyzed(photo_id, analysis={"faces": step % 3, "sharpness": 0.8},
                                                             job_id=job_id))
        progress = round(100 * step / steps, 1)
        show(f"job_progress  {job_id} {progress}%", ws.job_progress(
            job_id, progress, stage="analysing", message=f"Analysed {step} of {steps} photos"))
    show(f"job_completed {job_id}", ws.job_completed(job_id, result={"photos": steps, "faces": steps}))
    return job_id


def print_client_event(event):
    print(f"heard {event.type} from {event.client_type} {event.client_name or ''} ({event.client_id}) "
          f"at {event.timestamp}: {event.message}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=5, help="progress steps per job (default 5)")
    parser.add_argument("--delay", type=float, default=1.0, help="seconds between steps (default 1)")
    parser.add_argument("--rounds", type=int, default=1, help="good+failing job pairs to run; 0 runs forever")
    parser.add_argument("--listen", type=float, default=30.0, help="seconds to keep listening afterwards")
    args = parser.parse_args(argv)

    ws = get_websocket_fallback()
    listener = Listener()
    listener.on("*", print_client_event)
    listener.start()
    try:
        done = 0
        while args.rounds == 0 or done < args.rounds:
            run_job(ws, args.steps, args.delay)
            run_job(ws, args.steps, args.delay, fail_at=max(1, args.steps // 2))
            done += 1
        if args.listen > 0:
            print(f"listening for what clients send for {args.listen:g} s (Ctrl-C to stop)", flush=True)
            time.sleep(args.listen)
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()
    print(f"done: {ws.sent} sent, {ws.dropped} dropped", flush=True)
    return 0 if ws.dropped == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
