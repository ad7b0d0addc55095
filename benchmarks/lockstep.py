"""CPU per poll, per process: the lock-step fan-out (docs/PERFORMANCE.md, "Where the time goes").

``python -m benchmarks.lockstep [CLIENTS] [ROUNDS]`` (default 1 000 and 60):
CLIENTS long-poll one channel; message k is published (over ZeroMQ, through
the library and the notifier) only once every client has received message
k-1 and parked its next poll again. So every poll carries exactly one
message, and the CPU each process used divided by CLIENTS x ROUNDS is its
cost per poll, a figure that other work on the machine barely moves (the
latency figures of ``make bench`` move a lot). Also prints the round's
wall time (publish to the last client's receipt), median over the rounds.
"""

import asyncio
import os
import statistics
import sys
import tempfile
import time

import psutil

from benchmarks import payload, scenarios
from benchmarks.backend import Backend
from benchmarks.suite import new_event_loop, raise_fd_limit
from benchmarks.targets import Bridge


def _roles(target):
    """``{pid: role}`` for the hub, the notifier and each gateway worker."""
    roles = {}
    for name in ("hub", "notifier"):
        if target.pid_of(name):
            roles[target.pid_of(name)] = name
    master = psutil.Process(target.pid_of("gateway"))
    for k, worker in enumerate(master.children(), 1):
        roles[worker.pid] = f"gateway worker {k}"
    return roles


def _cpu(pids):
    out = {}
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            out[pid] = t.user + t.system
        except psutil.NoSuchProcess:
            out[pid] = 0.0
    return out


async def lockstep(target, clients, rounds, timeout=30.0):
    """The figures of one lock-step run against a started ``Bridge``."""
    backend = Backend(target.env, use_notifier=True)
    control = await scenarios._control_conn(target)
    channel = scenarios.channel_name("lockstep")
    subs = await scenarios._setup_subscribers(target, [channel], clients)
    received = [0]
    everyone = asyncio.Event()

    async def reader(sub):
        while True:
            for _ in await sub.poll(20):
                received[0] += 1
                if received[0] % clients == 0:
                    everyone.set()

    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(reader(s)) for s in subs]

    async def all_parked():
        deadline = time.monotonic() + timeout
        while await target.parked(control) < clients:
            scenarios._check(tasks)
            if time.monotonic() > deadline:
                raise RuntimeError("the clients did not all park again in time")
            await asyncio.sleep(0.002)

    try:
        await all_parked()
        roles = _roles(target)
        before, mine = _cpu(roles), os.times()
        walls = []
        for k in range(rounds):
            everyone.clear()
            start = time.monotonic()
            backend.publish(channel, payload(k, start))
            await asyncio.wait_for(everyone.wait(), timeout)
            walls.append(time.monotonic() - start)
            await all_parked()
        after, mine_after = _cpu(roles), os.times()
    finally:
        await scenarios._release(target, subs, tasks)
        control.close()
        backend.close()
    polls = clients * rounds
    # CPU times are sums of floats: a process that used nothing can read as -1e-11, never less than 0.
    per_poll = {roles[pid]: max(0.0, after[pid] - before[pid]) / polls * 1e6 for pid in roles}
    client = max(0.0, mine_after.user + mine_after.system - mine.user - mine.system) / polls * 1e6
    return {"round_ms": statistics.median(walls) * 1000, "per_poll_us": per_poll, "client_us": client}


async def _main(clients, rounds):
    raise_fd_limit()
    target = Bridge(tempfile.mkdtemp(prefix="bridge-lockstep-"), {})
    target.start()
    try:
        figures = await lockstep(target, clients, rounds)
    finally:
        target.stop()
    services = sum(figures["per_poll_us"].values())
    print(f"{clients} clients x {rounds} rounds: round p50 {figures['round_ms']:.0f} ms")
    for role, us in figures["per_poll_us"].items():
        print(f"  {role:<18} {us:6.1f} µs CPU per poll")
    print(f"  {'services in all':<18} {services:6.1f} µs\n  {'load client':<18} {figures['client_us']:6.1f} µs")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    new_event_loop().run_until_complete(_main(*(args + [1000, 60][len(args):])))
