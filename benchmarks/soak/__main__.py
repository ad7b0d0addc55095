"""``python -m benchmarks.soak [--seconds 600] [--seed N] [--interval 20:40]``: run the soak, print the summary.

Exits 0 when nothing was lost in silence, duplicated or reordered and every
counted loss was past a queue bound; 1 otherwise; 130 when interrupted.
"""

import argparse
import signal
import sys

from benchmarks.soak.faults import KINDS
from benchmarks.soak.runner import Soak


def _interval(text):
    lo, _, hi = text.partition(":")
    lo, hi = float(lo), float(hi or lo)
    if not 0 < lo <= hi:
        raise argparse.ArgumentTypeError("LO:HI seconds, 0 < LO <= HI")
    return lo, hi


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=600, help="how long the publishers run (default 600)")
    parser.add_argument("--seed", type=int, help="the seed of the fault schedule (default: a new one, printed)")
    parser.add_argument("--interval", type=_interval, default=(20, 40), metavar="LO:HI",
                        help="seconds between fault starts, drawn uniformly (default 20:40)")
    parser.add_argument("--faults", nargs="+", choices=KINDS, default=list(KINDS), help="the fault kinds to draw from")
    parser.add_argument("--per-transport", type=int, default=2, help="checked clients per transport (default 2)")
    parser.add_argument("--zmq-rate", type=float, default=40.0, help="ZeroMQ publishes per second (default 40)")
    parser.add_argument("--http-rate", type=float, default=8.0, help="HTTP broadcasts per second (default 8)")
    parser.add_argument("--direct-rate", type=float, default=6.0, help="HTTP sends to one client per second (default 6)")
    parser.add_argument("--max-stall", type=float, default=15.0,
                        help="longest a client may receive nothing while a message is due to it (default 15 s)")
    parser.add_argument("--drain", type=float, default=20.0, help="seconds allowed for the final drain (default 20)")
    parser.add_argument("--workdir", help="where the stack keeps its store and logs (default: a new temporary folder)")
    args = parser.parse_args(argv)
    if args.seconds < 10:
        parser.error("--seconds must be at least 10")

    def terminate(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the teardown that follows must not be cut short
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C tears down even where SIGINT was ignored
    soak = Soak(seconds=args.seconds, seed=args.seed, interval=args.interval, workdir=args.workdir,
                per_transport=args.per_transport, zmq_rate=args.zmq_rate, http_rate=args.http_rate,
                direct_rate=args.direct_rate, drain=args.drain, kinds=args.faults, max_stall=args.max_stall)
    try:
        report = soak.run()
    except KeyboardInterrupt:
        print("soak: interrupted before the traffic started", file=sys.stderr)
        return 130
    print(report.text(), flush=True)
    if any(note.startswith("interrupted") for note in report.notes):
        return 130
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
