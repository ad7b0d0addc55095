"""The control prober in a process of its own: ``python -m benchmarks.probe KIND PORT RATE SECONDS``.

The busy-control scenario times control requests while 1 000 clients poll.
Timed from the process that runs those 1 000 clients, a request's answer
waited for that process's event loop, busy with a round of poll answers,
as much as for the server: up to a hundred milliseconds of the load
generator's own making, for the bridge and for nchan alike. An operator's
request comes from a process of its own; so does this one. Prints one JSON
line: ``{kind: [seconds, ...]}``.
"""

import json
import sys
import time

from benchmarks.httpclient import Connection
from benchmarks.scenarios import Prober
from benchmarks.suite import new_event_loop
from benchmarks.targets import Bridge, Nchan

KINDS = {"bridge": Bridge, "nchan": Nchan}


class _Target:
    """The part of a target the prober uses: its port and its probes (no processes of its own)."""

    def __init__(self, kind, port):
        self._cls = KINDS[kind]
        self.port = port
        self.PROBES = self._cls.PROBES

    def __getattr__(self, name):  # probe, control_client: the target class's own, bound to this stand-in
        value = getattr(self._cls, name)
        return value.__get__(self) if hasattr(value, "__get__") else value


async def _main(kind, port, rate, seconds):
    target = _Target(kind, port)
    prober = Prober(target, rate)
    prober.conn = await Connection("127.0.0.1", port).open()
    prober.state = await target.control_client(prober.conn)
    try:
        await prober.run(time.monotonic() + seconds)
    finally:
        prober.close()
    print(json.dumps(prober.samples), flush=True)


if __name__ == "__main__":
    new_event_loop().run_until_complete(_main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])))
