"""The throughput sender: publishes ``--count`` messages to one channel as fast as it can.

With ``--seconds`` it stops when that time is up (the flood scenario), and
says how many it published and how many of them the library itself dropped.

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
    """Returns ``(start, end, messages published, messages the library dropped)``."""
    backend = Backend(os.environ, use_notifier=args.mode == "library")
    if not backend.available:
        sys.exit("no ZeroMQ publishing path: the notifier library is missing")
    if backend.sock is not None:
        backend.sock.setsockopt(__import__("zmq").LINGER, 30000)
    publish = backend.publish
    channel = args.channel
    now = time.monotonic
    start = now()
    stop = start + args.seconds if args.seconds > 0 else float("inf")
    count = 0
    for i in range(args.count):
        if not i & 255 and now() >= stop:
            break
        publish(channel, payload(i, now()))
        count += 1
    end = now()
    backend.close()
    dropped = backend.lib.dropped if backend.lib is not None else 0
    return start, end, count, dropped


async def http_blast(args):
    from benchmarks.httpclient import Connection
    from benchmarks.targets import Bridge, Nchan

    kind = Nchan if args.mode == "nchan-http" else Bridge
    request = kind.publish_request
    channel = args.channel
    counter = iter(range(args.count))
    done = [0]

    async def worker():
        conn = await Connection("127.0.0.1", args.port).open()
        for i in counter:
            if time.monotonic() >= stop:
                break
            path, body = request(channel, i, time.monotonic())
            status, _, _ = await conn.request(b"POST", path, body)
            if status >= 300:
                raise RuntimeError(f"publish answered {status}")
            done[0] += 1
        conn.close()

    start = time.monotonic()
    stop = start + args.seconds if args.seconds > 0 else float("inf")
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    return start, time.monotonic(), done[0], 0


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", required=True, choices=("library", "hub-direct", "nchan-http", "bridge-http"))
    parser.add_argument("--channel", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=0, help="stop sending after this long (0: no bound)")
    args = parser.parse_args()
    cpu0 = _cpu()
    if args.mode.endswith("http"):
        start, end, count, dropped = asyncio.run(http_blast(args))
    else:
        start, end, count, dropped = zmq_blast(args)
    # count: messages 0..count-1 published; sent: of them, those the publisher did not drop itself.
    print(json.dumps({"start": start, "end": end, "rate": count / max(1e-9, end - start), "cpu": _cpu() - cpu0,
                      "count": count, "sent": count - dropped, "dropped": dropped}))


if __name__ == "__main__":
    main()
