"""``python -m benchmarks [--compare] [--profile quick] [--only KEY...]``: print the benchmark table."""

import argparse
import sys
import time

from benchmarks.suite import PROFILES, Suite, machine, new_event_loop, nginx_installed, raise_fd_limit


def main():
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--compare", action="store_true", help="run the same scenarios against nginx + nchan")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full", help="sizes (quick: seconds)")
    parser.add_argument("--only", nargs="*",
                        help="scenario keys: lat fan control throughput flood hub idle pubs lrs calls "
                             "(or lat_http, fan_http...)")
    parser.add_argument("--scaling", action="store_true", help="only the scaling points (docs/PERFORMANCE.md)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a BRIDGE_* setting for every bridge stack, e.g. BRIDGE_GATEWAY_WORKERS=3")
    parser.add_argument("--workdir", help="where stacks keep logs (default: a new temporary folder)")
    args = parser.parse_args()
    if args.compare and not nginx_installed():
        sys.exit("bench-compare needs nginx and libnginx-mod-nchan (make bench-compare installs them)")
    soft, _ = raise_fd_limit()
    env = dict(item.split("=", 1) for item in args.set if "=" in item)
    suite = Suite(args.profile, args.workdir, log=lambda m: print(m, file=sys.stderr, flush=True), only=args.only,
                  env=env)
    print(f"# {machine()}; open files limit {soft}; logs in {suite.workdir}; settings {env}", file=sys.stderr)
    started = time.monotonic()
    loop = new_event_loop()
    if args.scaling:
        try:
            loop.run_until_complete(suite.run_scaling(args.profile))
        finally:
            loop.close()
        print(f"\nScaling ({args.profile}, {time.monotonic() - started:.0f} s) on {machine()}")
        print(suite.scaling_table())
        return 0
    try:
        print("bridge:", file=sys.stderr)
        loop.run_until_complete(suite.run_bridge())
        if args.compare:
            print("nchan:", file=sys.stderr)
            loop.run_until_complete(suite.run_nchan())
    finally:
        loop.close()
    print(f"\nBenchmark ({args.profile}, {time.monotonic() - started:.0f} s) on {machine()}")
    print(suite.table())
    rows = suite.rows()
    return 1 if any(r["status"] in ("error", "missing") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
