"""Calls into the plug-in (docs/BACKENDS.md): round trip and rate to one plug-in under the SDK stand-in.

The plug-in is the real one under lua5.1 (tests/lua/harness.py's driver,
which registers ``echo``), reading by long-poll or by the LrSocket push
(the stand-in of tests/lua/lr_shim); the backend is the call
library (services/notifier/calls.py) on its own DEALER. A round trip is
``call()`` to its result: the hub queues the command, the parked poll is
answered, the plug-in runs it in a task and POSTs the result, the hub hands
it to the waiting call. The rate is trivial commands with ``concurrency``
calls in flight.
"""

import asyncio
import shutil
import statistics
import time

from services.notifier.calls import AsyncCaller
from tests.lua.harness import LuaClient
from tests.stack import wait_for


def available():
    """The stand-in needs lua5.1."""
    return shutil.which("lua5.1") is not None


def _pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _pushing(target, client_id):
    """Whether the hub delivers to ``client_id`` over LrSocket now (GET /ws/clients)."""
    r = target.stack.get("/ws/clients")
    return any(c["id"] == client_id and c["transport"] == "lrsocket" and c["connected"]
               for c in r.json.get("clients", ()))


async def calls(target, workdir, count, warmup, rate_count, concurrency=32, transport="longpoll"):
    """``{"p50", "p99" (ms), "rate" (calls/s)}`` for one plug-in on ``target`` (a started Bridge).

    ``transport`` is the plug-in's ``TRANSPORT``: ``longpoll``, or ``lrsocket``
    (the hub pushes the command over the LrSocket stand-in; the result still
    goes back over ``POST /ws/send``), measured once the hub says it pushes.
    """
    deadline = max(60.0, count + rate_count / 10)
    options = {"POLL_WAIT": 20}
    if transport == "lrsocket":
        options["TRANSPORT"] = "lrsocket"
    client = LuaClient(target.stack.base_url, workdir, options=options, deadline=deadline)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, client.start)
    try:
        connected = await loop.run_in_executor(None, lambda: client.wait("connected", timeout=30))
        client_id = connected[0]["data"]["client_id"]
        if transport == "lrsocket":
            await loop.run_in_executor(None, lambda: wait_for(lambda: _pushing(target, client_id), 30, interval=0.05,
                                                              message="the hub pushing to the plug-in over LrSocket"))
        async with AsyncCaller(target.env["BRIDGE_HUB_RPC"], caller="bench") as caller:
            for n in range(warmup):
                await caller.call(client_id, "echo", {"n": n}, timeout=30)
            times = []
            for n in range(count):
                started = time.perf_counter()
                await caller.call(client_id, "echo", {"n": n}, timeout=30)
                times.append((time.perf_counter() - started) * 1000)
            gate = asyncio.Semaphore(concurrency)

            async def one(n):
                async with gate:
                    return await caller.call(client_id, "echo", {"n": n}, timeout=60)

            started = time.perf_counter()
            answers = await asyncio.gather(*(one(n) for n in range(rate_count)))
            elapsed = time.perf_counter() - started
            if answers != [{"n": n} for n in range(rate_count)]:
                raise RuntimeError("a call came back with another call's answer")
        return {"p50": statistics.median(times), "p99": _pct(times, 0.99), "rate": rate_count / elapsed}
    finally:
        await loop.run_in_executor(None, client.stop)
