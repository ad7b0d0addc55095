"""The benchmark scenarios. Each runs once against a target and returns its figures.

Every scenario waits on conditions with deadlines (parked polls counted by
the server, messages counted by the client), never on fixed sleeps; the
only sleeps pace the publisher at its offered rate.
"""

import asyncio
import itertools
import json
import os
import random
import sys
import time

import psutil

from benchmarks.backend import Backend
from benchmarks.httpclient import Connection, gather_bounded, open_many
from benchmarks import payload
from benchmarks.targets import service_processes, total_rss, wait_parked
from services import protocol
from services.notifier.server import DRAIN_BUDGET as NOTIFIER_TURN

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_names = itertools.count(1)


def channel_name(kind):
    """A fresh channel per run, so runs never see each other's messages."""
    return f"{kind}-{os.getpid()}-{next(_names)}"


def percentile(values, q):
    """Nearest-rank percentile of ``values`` (``q`` in 0..100); ``None`` when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[rank]


class CpuMeter:
    """CPU used by this load generator (and its finished children) and by the services."""

    def __init__(self, service_pids):
        self.services = service_processes(service_pids)

    @staticmethod
    def _mine():
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def _theirs(self):
        total = 0.0
        for proc in self.services:
            try:
                t = proc.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    def __enter__(self):
        self.t0 = time.monotonic()
        self.mine0 = self._mine()
        self.theirs0 = self._theirs()
        return self

    def __exit__(self, *exc):
        self.wall = wall = max(1e-9, time.monotonic() - self.t0)
        self.client = (self._mine() - self.mine0) / wall * 100
        self.service = (self._theirs() - self.theirs0) / wall * 100
        return False

    def figures(self):
        """Client and service CPU in percent of one core."""
        return {"client_cpu": self.client, "service_cpu": self.service}


def ms(seconds):
    return None if seconds is None else seconds * 1000


async def _setup_subscribers(target, channels, count, concurrency=100):
    """``count`` subscribers, the k-th on ``channels[k % len(channels)]``."""
    conns = await open_many("127.0.0.1", target.port, count)
    subs = [target.subscriber(channels[k % len(channels)], conn) for k, conn in enumerate(conns)]
    await gather_bounded([s.setup for s in subs], concurrency)
    return subs


async def _one_subscriber(target, kind):
    """A new channel of ``kind``, a control connection, the polls parked before, and one set-up subscriber."""
    channel = channel_name(kind)
    control = await _control_conn(target)
    base = max(0, await target.parked(control))
    sub = target.subscriber(channel)
    await sub.setup()
    return channel, control, base, sub


async def _release(target, subs, tasks, concurrency=20):
    """Stop the readers and let the server forget the subscribers (bridge: /ws/disconnect)."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    ids = [s.client_id for s in subs if getattr(s, "client_id", None)]
    if ids:
        pool = await open_many("127.0.0.1", target.port, min(concurrency, len(ids)))
        queue = list(ids)

        async def worker(conn):
            while queue:
                client_id = queue.pop()
                await conn.request(b"POST", b"/ws/disconnect", b'{"client_id":"%s"}' % client_id, timeout=10)
            conn.close()

        await asyncio.gather(*(worker(c) for c in pool), return_exceptions=True)
    for sub in subs:
        sub.conn.close()


async def _settle(target, conn, base, timeout=5.0):
    """Wait (bounded) until the polls a scenario parked are gone, so the next one counts from a still base."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if await target.parked(conn) <= base:
                return
        except Exception:
            return
        await asyncio.sleep(0.02)


def _check(tasks):
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()


async def _control_conn(target):
    return await Connection("127.0.0.1", target.port).open()


class HttpPublisher:
    """HTTP publishes that do not wait for each other: a slow answer must not lower the offered rate.

    ``answers`` holds ``(monotonic time answered, seconds taken)`` of every
    publish the server took; with ``strict`` a refused one fails the run
    (``close``), else it is only not counted as published.
    """

    def __init__(self, target, strict=True):
        self.target = target
        self.strict = strict
        self.idle = []
        self.tasks = set()
        self.errors = []
        self.answers = []

    def publish(self, channel, i):
        task = asyncio.get_running_loop().create_task(self._one(channel, i))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _one(self, channel, i):
        conn = self.idle.pop() if self.idle else Connection("127.0.0.1", self.target.port)
        started = time.monotonic()
        try:
            await self.target.publish_http(conn, channel, i)
        except Exception as ex:
            self.errors.append(ex)
            conn.close()
            return
        now = time.monotonic()
        self.answers.append((now, now - started))
        self.idle.append(conn)

    def published(self, count, rate, start, until):
        """Figures of the publishes answered by ``until``: the share of the offered rate published, and more.

        ``published``: the messages answered within the run, at the rate they
        were answered, as a share of the ``count`` offered at ``rate`` from
        ``start`` (100: every one answered, each before its slot's end on
        average; a server that answers only 20 of 50 a second gives 40).
        """
        taken = [a for a in self.answers if a[0] <= until]
        slots = count / rate
        span = max(slots, max((a[0] for a in taken), default=start) - start)
        waits = [a[1] for a in taken]
        return {"published": len(taken) / count * slots / span * 100, "answered": len(taken) / count * 100,
                "refused": len(self.errors), "publish_p50": ms(percentile(waits, 50)),
                "publish_p99": ms(percentile(waits, 99))}

    async def close(self):
        await asyncio.gather(*list(self.tasks), return_exceptions=True)
        for conn in self.idle:
            conn.close()
        if self.errors and self.strict:
            raise self.errors[0]


class Prober:
    """Control requests one at a time at ``rate``/s on average, kinds in turn, each timed (the target's
    ``probe``).

    The gaps between requests are random (exponential, seeded): at a fixed
    30 a second the requests kept falling at the same point of a fan-out's 50
    rounds a second, and the median moved between 2 and 27 ms from one run
    of the same code to the next with where that point was.
    """

    def __init__(self, target, rate, seed=18):
        self.target = target
        self.rate = rate
        self.samples = {kind: [] for kind in target.PROBES}
        self.conn = None
        self.state = None
        self.random = random.Random(seed)

    async def setup(self):
        self.conn = await _control_conn(self.target)
        self.state = await self.target.control_client(self.conn)
        return self

    async def run(self, until):
        """Probe until the monotonic time ``until``."""
        kinds = list(self.samples)
        at = time.monotonic()
        for n in itertools.count():
            at += self.random.expovariate(self.rate)
            if at >= until:
                return
            delay = at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            kind = kinds[n % len(kinds)]
            t = time.perf_counter()
            await self.target.probe(self.conn, self.state, kind)
            self.samples[kind].append(time.perf_counter() - t)

    def figures(self):
        every = [x for values in self.samples.values() for x in values]
        out = {"control_p50": ms(percentile(every, 50)), "control_p99": ms(percentile(every, 99)),
               "probes": len(every)}
        for kind, values in self.samples.items():
            out[f"{kind}_p99"] = ms(percentile(values, 99))
        return out

    def close(self):
        if self.conn is not None:
            self.conn.close()


class ProcessProber(Prober):
    """``Prober``'s requests from a process of its own (benchmarks/probe.py): timed apart from the load
    generator's event loop, as an operator's requests would be."""

    async def setup(self):
        return self

    async def run(self, until):
        seconds = max(0.0, until - time.monotonic())
        env = dict(os.environ, PYTHONPATH=ROOT)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.probe", self.target.name, str(self.target.port), str(self.rate),
            str(seconds), cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE)
        out, _ = await asyncio.wait_for(proc.communicate(), seconds + 60)
        if proc.returncode != 0:
            raise RuntimeError(f"the prober exited with {proc.returncode}")
        self.samples = json.loads(out.decode().strip().splitlines()[-1])


# ----------------------------------------------------------------- (a)
async def latency(target, count=500, warmup=20, backend=None, gap=0.002):
    """Publish one message, wait for the one long-poller to get it, repeat: p50/p99/max."""
    channel, control, base, sub = await _one_subscriber(target, "lat")
    pub = await _control_conn(target)
    loop = asyncio.get_running_loop()
    waiting = {}

    async def reader():
        while True:
            for i, t in await sub.poll(20):
                now = time.monotonic()
                fut = waiting.pop(i, None)
                if fut is not None and not fut.done():
                    fut.set_result(now - t)

    task = loop.create_task(reader())
    samples = []
    try:
        await wait_parked(target, control, 1, base, tasks=[task])
        with CpuMeter(target.pids()) as cpu:
            for i in range(warmup + count):
                fut = loop.create_future()
                waiting[i] = fut
                if backend is not None:
                    backend.publish(channel, payload(i, time.monotonic()))
                else:
                    await target.publish_http(pub, channel, i)
                try:
                    took = await asyncio.wait_for(fut, 5)
                except asyncio.TimeoutError:
                    _check([task])
                    raise RuntimeError(f"message {i} not delivered within 5 s") from None
                if i >= warmup:
                    samples.append(took)
                # Let the poller park again, so each message meets a waiting poll.
                await asyncio.sleep(gap)
    finally:
        await _release(target, [sub], [task])
        await _settle(target, control, base)
        control.close()
        pub.close()
    return {"p50": ms(percentile(samples, 50)), "p99": ms(percentile(samples, 99)),
            "max": ms(max(samples)), **cpu.figures()}


# ----------------------------------------------------------------- (b)
async def fanout(target, clients, rate=50.0, duration=5.0, backend=None, drain=5.0, channels=1, size=0,
                 probe_rate=None):
    """``clients`` long-pollers on one channel, messages at ``rate``/s: p50/p99, % delivered.

    Publishes through ``backend`` (ZeroMQ) when given, else over HTTP without
    waiting for each answer, so the offered rate stays the rate asked for;
    then ``published`` is the share of the offered rate the server took
    (``HttpPublisher.published``). With ``channels`` > 1 the clients are
    spread over that many channels and the messages go to them in turn;
    ``size`` pads each message (bytes). With ``probe_rate``, a ``Prober``
    sends control requests one at a time while the messages are offered
    (``control_p50``, ``control_p99`` and each kind's p99).
    """
    names = [channel_name("fan") for _ in range(channels)]
    control = await _control_conn(target)
    base = max(0, await target.parked(control))
    subs = await _setup_subscribers(target, names, clients)
    members = [len(subs[k::channels]) for k in range(channels)]
    pad = "x" * size
    pub = backend or HttpPublisher(target, strict=False)
    prober = await ProcessProber(target, probe_rate).setup() if probe_rate else None
    samples = []
    seen = [set() for _ in subs]
    record = samples.append

    async def reader(sub, mine):
        while True:
            items = await sub.poll(20)
            now = time.monotonic()
            for i, t in items:
                if i not in mine:
                    mine.add(i)
                    record(now - t)

    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(reader(s, m)) for s, m in zip(subs, seen)]
    count = max(1, int(rate * duration))
    expected = sum(members[k % channels] for k in range(count))
    extra = {}
    try:
        await wait_parked(target, control, clients, base, tasks=tasks)
        with CpuMeter(target.pids()) as cpu:
            start = time.monotonic() + 0.01
            probing = loop.create_task(prober.run(start + count / rate)) if prober else None
            for k in range(count):
                delay = start + k / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if backend is not None:
                    message = payload(k, time.monotonic())
                    if pad:
                        message["pad"] = pad
                    backend.publish(names[k % channels], message)
                else:
                    pub.publish(names[k % channels], k)
            offered = count / max(1e-9, time.monotonic() - start) if count > 1 else rate
            if probing is not None:
                await probing
                extra.update(prober.figures())
            deadline = time.monotonic() + drain
            while sum(map(len, seen)) < expected and time.monotonic() < deadline:
                _check(tasks)
                await asyncio.sleep(0.01)
            if backend is None:
                extra.update(pub.published(count, rate, start, time.monotonic()))
    finally:
        await _release(target, subs, tasks)
        await _settle(target, control, base)
        control.close()
        if prober is not None:
            prober.close()
        if backend is None:
            await pub.close()
    delivered = sum(map(len, seen))
    service_seconds = cpu.service / 100 * cpu.wall
    return {"p50": ms(percentile(samples, 50)), "p99": ms(percentile(samples, 99)),
            "delivered": delivered / expected * 100, "offered_rate": offered,
            "service_us": service_seconds / max(1, delivered) * 1e6, **extra, **cpu.figures()}


# ----------------------------------------------------------------- (c)
async def throughput(target, count, mode, concurrency=4, stall=5.0):
    """A separate sender floods one channel; one long-poller drains it: delivered msg/s, lost."""
    channel, control, base, sub = await _one_subscriber(target, "tp")
    seen = set()
    state = {"last": None}

    async def reader():
        while True:
            items = await sub.poll(5)
            if items:
                state["last"] = time.monotonic()
                seen.update(i for i, _ in items)

    loop = asyncio.get_running_loop()
    task = loop.create_task(reader())
    try:
        await wait_parked(target, control, 1, base, tasks=[task])
        args = [sys.executable, "-m", "benchmarks.blast", "--mode", mode, "--channel", channel,
                "--count", str(count), "--port", str(target.port), "--concurrency", str(concurrency)]
        env = dict(getattr(target, "env", os.environ))
        env["PYTHONPATH"] = ROOT
        with CpuMeter(target.pids()) as cpu:
            sender = await asyncio.create_subprocess_exec(*args, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE)
            out, _ = await asyncio.wait_for(sender.communicate(), 120)
            if sender.returncode != 0:
                raise RuntimeError(f"sender exited with {sender.returncode}")
            sent = json.loads(out.decode().strip().splitlines()[-1])
            progress, moved = len(seen), time.monotonic()
            while len(seen) < count and time.monotonic() - moved < stall:
                _check([task])
                await asyncio.sleep(0.01)
                if len(seen) != progress:
                    progress, moved = len(seen), time.monotonic()
    finally:
        await _release(target, [sub], [task])
        await _settle(target, control, base)
        control.close()
    received = len(seen)
    elapsed = (state["last"] or time.monotonic()) - sent["start"]
    return {"rate": received / max(1e-9, elapsed), "lost": (count - received) / count * 100,
            "send_rate": sent["rate"], "sender_cpu": sent["cpu"], **cpu.figures()}


async def flood(target, count, seconds, mode, concurrency=4, stall=5.0):
    """A separate sender floods one channel for ``seconds`` (at most ``count``); one acking long-poller reads.

    Figures: the messages the client received while the flood ran, per
    second (``rate``); the sender's ``offered`` rate; ``lost`` (%) of what the
    sender handed over; ``lost_count`` against ``counted``, the sum of the
    poll answers' ``dropped``, and ``uncounted`` = lost - counted, which
    must be 0: every message the client did not get is reported to it. Each
    message carries its sequence number, so a duplicate or a stranger is
    seen too (``strangers``). The client keeps reading after the flood until
    everything sent is received or counted, or nothing moved for ``stall`` s.
    """
    channel, control, base, sub = await _one_subscriber(target, "flood")
    seen = set()
    marks = []  # (monotonic time of a poll answer, messages received by then)

    async def reader():
        while True:
            items = await sub.poll(1)
            seen.update(i for i, _ in items)
            marks.append((time.monotonic(), len(seen)))

    loop = asyncio.get_running_loop()
    task = loop.create_task(reader())
    try:
        await wait_parked(target, control, 1, base, tasks=[task])
        args = [sys.executable, "-m", "benchmarks.blast", "--mode", mode, "--channel", channel,
                "--count", str(count), "--seconds", str(seconds), "--port", str(target.port),
                "--concurrency", str(concurrency)]
        env = dict(getattr(target, "env", os.environ))
        env["PYTHONPATH"] = ROOT
        with CpuMeter(target.pids()) as cpu:
            sender = await asyncio.create_subprocess_exec(*args, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE)
            out, _ = await asyncio.wait_for(sender.communicate(), seconds + 120)
            if sender.returncode != 0:
                raise RuntimeError(f"sender exited with {sender.returncode}")
            sent = json.loads(out.decode().strip().splitlines()[-1])
        handed = sent["sent"]
        counts = target.counts_drops
        accounted = lambda: len(seen) + (sub.dropped if counts else 0)
        progress, moved = accounted(), time.monotonic()
        while accounted() < handed and time.monotonic() - moved < stall:
            _check([task])
            await asyncio.sleep(0.01)
            if accounted() != progress:
                progress, moved = accounted(), time.monotonic()
    finally:
        await _release(target, [sub], [task])
        await _settle(target, control, base)
        control.close()
    during = max((n for t, n in marks if t <= sent["end"]), default=0)
    lost = handed - len(seen & set(range(sent["count"])))
    return {"rate": during / max(1e-9, sent["end"] - sent["start"]), "offered": sent["rate"],
            "sent": handed, "received": len(seen), "lost": lost / max(1, handed) * 100, "lost_count": lost,
            "counted": sub.dropped if counts else None, "uncounted": lost - sub.dropped if counts else None,
            "strangers": len(seen - set(range(sent["count"]))), "sender_dropped": sent.get("dropped", 0),
            **cpu.figures()}


async def hub_rate(target, count):
    """Events straight into the hub (the stand-in notifier), to one subscribed client: events/s.

    Measured from the first event sent to the hub counting the last one as
    published (its own ``status`` counter), so the sender's speed does not hide
    the hub's. Needs a stack without the notifier (its address is ours).
    Twice: sent as the notifier sends a flood, in runs of at most one of its
    loop turns (``DRAIN_BUDGET`` events, docs/PROTOCOL.md rule 11), then one
    message per event (``_single`` figures), as a notifier sends a trickle.
    """
    channel = channel_name("hub")
    sub = target.subscriber(channel)
    await sub.setup()
    control = await _control_conn(target)
    backend = Backend(target.env, use_notifier=False)
    try:
        frames = [backend.encoded(channel, payload(i, 0.0)) for i in range(count)]
        runs = [protocol.encode_event_run(protocol.TOPIC_PUBLISH, run) for run in
                protocol.batches([f[2] for f in frames], max_items=NOTIFIER_TURN)]
        figures = await _hub_pass(target, control, backend, runs, count)
        single = await _hub_pass(target, control, backend, frames, count)
        figures.update({"rate_single": single["rate"], "hub_us_single": single["hub_us"]})
    finally:
        backend.close()
        await _release(target, [sub], [])
        control.close()
    return figures


async def _hub_pass(target, control, backend, messages, count):
    status = await _status(control)
    base = status["messages"]["published"]
    queued0 = status["queued_messages"]
    hub = CpuMeter([target.pid_of("hub")])
    with CpuMeter(target.pids()) as cpu, hub:
        start = time.monotonic()
        send = backend.sock.send_multipart
        for m in messages:
            send(m)
        sent_at = time.monotonic()
        deadline = start + 60
        while True:
            status = await _status(control)
            if status["messages"]["published"] - base >= count or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.005)
        done = time.monotonic()
    published = status["messages"]["published"] - base
    return {"rate": published / (done - start), "send_rate": count / max(1e-9, sent_at - start),
            "lost": (count - published) / count * 100,
            "queued": status["queued_messages"] - queued0,
            "hub_us": hub.service / 100 * (done - start) / max(1, published) * 1e6, **cpu.figures()}


async def _status(conn):
    import orjson
    status, _, body = await conn.request(b"GET", b"/ws/status")
    return orjson.loads(body)["status"]


# ----------------------------------------------------------------- (d)
async def _warm_up(target, control, count, base, wait):
    """Park and release ``count`` polls, so one-time costs are paid before a baseline is taken."""
    subs = await _setup_subscribers(target, [channel_name("warm")], count)
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(s.poll(wait)) for s in subs]
    try:
        await wait_parked(target, control, count, base, tasks=tasks)
    finally:
        await _release(target, subs, tasks)
        await _settle(target, control, base)


async def idle(target, count, controls=300, wait=25, warm=200):
    """``count`` idle long-polls parked: service RSS per connection, control requests' p99.

    The memory is the *marginal* cost of a parked poll: ``warm`` polls are
    parked and released first, so what a server allocates once (lazy imports,
    route compilation, allocator pools, caches) is in the baseline.
    """
    pids = target.pids()
    control = await _control_conn(target)
    parked_before = max(0, await target.parked(control))
    if warm:
        await _warm_up(target, control, min(warm, count), parked_before, wait)
    base = total_rss(pids)
    subs = await _setup_subscribers(target, [channel_name("idle")], count)
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(s.poll(wait)) for s in subs]
    samples = []
    try:
        await wait_parked(target, control, count, parked_before, tasks=tasks)
        rss = total_rss(pids)
        state = await target.control_client(control)
        with CpuMeter(pids) as cpu:
            for _ in range(controls):
                t = time.perf_counter()
                await target.control(control, state)
                samples.append(time.perf_counter() - t)
        _check(tasks)
    finally:
        await _release(target, subs, tasks)
        await _settle(target, control, parked_before)
        control.close()
    return {"kb_per_conn": (rss - base) / count / 1024, "rss_mb": rss / 2**20,
            "control_p50": ms(percentile(samples, 50)), "control_p99": ms(percentile(samples, 99)),
            **cpu.figures()}


# ----------------------------------------------------------------- (e)
async def publishers(target, count, mode, concurrency=2):
    """``count`` short-lived processes, each publishing one event and exiting."""
    channel, control, base, sub = await _one_subscriber(target, "pubs")
    seen = set()

    async def reader():
        while True:
            seen.update(i for i, _ in await sub.poll(20))

    loop = asyncio.get_running_loop()
    task = loop.create_task(reader())
    env = dict(getattr(target, "env", os.environ))
    env["PYTHONPATH"] = ROOT
    publish, process = [], []
    todo = list(range(count))

    async def worker():
        while todo:
            i = todo.pop()
            args = [sys.executable, "-m", "benchmarks.oneshot", "--mode", mode, "--channel", channel,
                    "--index", str(i), "--port", str(target.port)]
            t = time.monotonic()
            proc = await asyncio.create_subprocess_exec(*args, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE)
            out, _ = await asyncio.wait_for(proc.communicate(), 30)
            process.append(time.monotonic() - t)
            if proc.returncode != 0:
                raise RuntimeError(f"publisher {i} exited with {proc.returncode}")
            publish.append(json.loads(out.decode().strip().splitlines()[-1])["publish"])

    try:
        await wait_parked(target, control, 1, base, tasks=[task])
        with CpuMeter(target.pids()) as cpu:
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            deadline = time.monotonic() + 10
            while len(seen) < count and time.monotonic() < deadline:
                _check([task])
                await asyncio.sleep(0.01)
    finally:
        await _release(target, [sub], [task])
        await _settle(target, control, base)
        control.close()
    return {"publish_p50": ms(percentile(publish, 50)), "publish_p99": ms(percentile(publish, 99)),
            "process_p50": ms(percentile(process, 50)), "delivered": len(seen) / count * 100,
            **cpu.figures()}
