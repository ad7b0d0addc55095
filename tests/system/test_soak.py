"""The soak's 60-second variant (``make soak`` runs ten minutes): issue 13's faults against the real processes.

Faults come every 7-10 s here instead of 20-40 s, so one minute sees five
or six of them as a rule and never fewer than two. ``SOAK_SEED=N`` replays
a run's fault schedule; the seed is in the summary, which is the failure
message (with the services' warnings, as pytest's temporary folders do not
stay).
"""

import os
from pathlib import Path

import pytest

from benchmarks.soak import Soak

SECONDS = 60
INTERVAL = (7, 10)


def warnings(workdir, per_service=8):
    """The last WARNING/ERROR lines each service printed."""
    out = []
    for path in sorted(Path(workdir).glob("*.out")):
        lines = [line for line in path.read_text(errors="replace").splitlines() if " WARNING " in line or " ERROR " in line]
        out += [f"--- {path.stem}: last {min(per_service, len(lines))} of {len(lines)} warnings"] + lines[-per_service:]
    return "\n".join(out)


@pytest.mark.soak
@pytest.mark.timeout(240)
def test_soak_one_minute_loses_nothing_in_silence(tmp_path):
    seed = int(os.environ["SOAK_SEED"]) if os.environ.get("SOAK_SEED") else None
    soak = Soak(seconds=SECONDS, seed=seed, interval=INTERVAL, workdir=str(tmp_path / "soak"), drain=20,
                say=lambda text: print(text, flush=True))
    report = soak.run()
    summary = report.text()
    print(summary)
    assert report.faults >= 2, summary
    assert report.passed, f"{warnings(soak.workdir)}\n\n{summary}"
    assert report.failures == {}
