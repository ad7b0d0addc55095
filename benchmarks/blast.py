"""The throughput sender: publishes ``--count`` messages to one channel as fast as it can.

Run by the throughput scenario as its own process (a backend service is its
own process too), so sending does not share a CPU time slice with the
receiving client. Prints one JSON line: when it started, its send rate and
the CPU it used.
"""

import argparse
import asyncio
import json
import os
import sys
import time

from benchmarks.backend import Backend
from benchmarks import payload


def _cpu():
    t = os.times()
    return t.user + t.system


def zmq_blast(args):
    backend = Backend(os.environ, use_notifier=args.mode == "library")
    if not backend.available:
        sys.exit("no ZeroMQ publishing path: the notifier library is missing")
    if backend.sock is not None:
        backend.sock.setsockopt(__import__("zmq").LINGER, 30000)
    publish = backend.publish
    channel = args.channel
    now = time.monotonic
    start = now()
    for i in range(args.count):
        publish(channel, payload(i, now()))
    end = now()
    backend.close()
    return start, end


async def http_blast(args):
    from benchmarks.httpclient import Connection
    from benchmarks.targets import Bridge, Nchan

    kind = Nchan if args.mode == "nchan-http" else Bridge
    request = kind.publish_request
    channel = args.channel
    counter = iter(range(args.count))

    async def worker():
        conn = await Connection("127.0.0.1", args.port).open()
        for i in counter:
            path, body = request(channel, i, time.monotonic())
            status, _, _ = await conn.request(b"POST", path, body)
            if status >= 300:
                raise RuntimeError(f"publish answered {status}")
        conn.close()

    start = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    return start, time.monotonic()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", required=True, choices=("library", "hub-direct", "nchan-http", "bridge-http"))
    parser.add_argument("--channel", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    cpu0 = _cpu()
    if args.mode.endswith("http"):
        start, end = asyncio.run(http_blast(args))
    else:
        start, end = zmq_blast(args)
    print(json.dumps({"start": start, "rate": args.count / max(1e-9, end - start), "cpu": _cpu() - cpu0}))


if __name__ == "__main__":
    main()
