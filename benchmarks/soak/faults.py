"""The soak's faults, one at a time at seeded random intervals, each bounded in time.

| kind | what it does |
| --- | --- |
| ``kill_hub`` | SIGKILL the hub, start it again (same store on disk) |
| ``kill_notifier`` | SIGKILL the notifier, start it again |
| ``kill_worker`` | SIGKILL one gateway worker; gunicorn starts another |
| ``stop_hub`` | SIGSTOP the hub for 3 s, then SIGCONT |
| ``backlog`` | 45 broadcasts of 100 KB (over 4 MiB) to a client that then drains them with polls |
| ``idle_subscribers`` | 200 clients handshake and subscribe to the busy channels, and never poll |

The kinds are drawn from a shuffled bag (every kind once before any
repeats), so a short run still sees different faults.
"""

import http.client
import json
import os
import signal
import threading
import time

import psutil

RECOVERY_DEADLINE = 15.0  # seconds a restarted process gets to answer before the soak notes it and goes on
STOP_SECONDS = 3.0
BACKLOG_COUNT = 45
BACKLOG_BYTES = 100_000
IDLE_COUNT = 200
PROBES = 8

KINDS = ("kill_hub", "kill_notifier", "kill_worker", "stop_hub", "backlog", "idle_subscribers")


def _until(predicate, deadline, step=0.05):
    """Seconds until ``predicate()`` held, or ``None`` when ``deadline`` (monotonic) passed first."""
    start = time.monotonic()
    while time.monotonic() < deadline:
        try:
            if predicate():
                return time.monotonic() - start
        except (OSError, http.client.HTTPException, psutil.Error):
            pass
        time.sleep(step)
    return None


def _took(seconds, what):
    return f"{what} after {seconds:.1f} s" if seconds is not None else f"NOT {what} within {RECOVERY_DEADLINE:.0f} s"


class Faults(threading.Thread):
    """Injects one fault every ``interval`` (lo, hi) seconds until ``until``; records each as a window."""

    def __init__(self, soak, rng, interval, until, kinds=KINDS):
        super().__init__(name="faults", daemon=True)
        self.soak = soak
        self.rng = rng
        self.interval = interval
        self.until = until
        self.kinds = tuple(kinds)
        self.bag = []
        self.done = []  # (start, kind, outcome)
        self.finishing = threading.Event()  # no new fault from now on
        self.idle = threading.Event()  # set while no fault is in progress
        self.idle.set()
        self.stopping = threading.Event()  # the stack is down: the thread may end

    def next_kind(self):
        if not self.bag:
            self.bag = list(self.kinds)
            self.rng.shuffle(self.bag)
        return self.bag.pop()

    def run(self):
        # This thread restarts the hub and the notifier, and Linux sends a child's parent-death
        # signal (tests/stack.py sets it) when the thread that started it ends: so it ends only
        # once the stack is down (stop()), and finish() merely ends the faults.
        due = time.monotonic() + self.rng.uniform(*self.interval)
        while not self.finishing.wait(max(0.0, due - time.monotonic())):
            if due > self.until:
                break
            self.idle.clear()
            try:
                self.inject()
            finally:
                self.idle.set()
            due = max(self.done[-1][0] + self.rng.uniform(*self.interval), time.monotonic() + 1.0)
        self.stopping.wait()

    def inject(self):
        kind = self.next_kind()
        start = time.monotonic()
        self.soak.say(f"fault {len(self.done) + 1}: {kind}")
        try:
            outcome = getattr(self, kind)()
        except Exception as ex:  # noted in the report; the soak goes on
            outcome = f"fault failed: {type(ex).__name__}: {ex}"
        outcome += f"; then /ws/status 200 in {self.probe()} of {PROBES}"
        self.done.append((start, kind, outcome))
        self.soak.say(f"fault {len(self.done)}: {kind}: {outcome}")

    def finish(self, timeout):
        """No new fault; wait (at most ``timeout``) for the one in progress to end."""
        self.finishing.set()
        return self.idle.wait(timeout)

    def stop(self):
        """The stack is down: let the thread end."""
        self.finishing.set()
        self.stopping.set()

    def probe(self):
        """How many of ``PROBES`` fresh connections at once get /ws/status 200 (a worker cut off from the hub shows)."""
        answers = []

        def one():
            try:
                answers.append(self.soak.stack.get("/ws/status", timeout=5).status)
            except (OSError, http.client.HTTPException):
                pass
        threads = [threading.Thread(target=one, daemon=True) for _ in range(PROBES)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(6)
        return answers.count(200)

    # --------------------------------------------------------------- kinds
    def kill_hub(self):
        stack = self.soak.stack
        stack.kill("hub")
        stack.start("hub")
        took = _until(lambda: stack.get("/ws/status", timeout=2).status == 200,
                      time.monotonic() + RECOVERY_DEADLINE)
        return _took(took, "answering again")

    def kill_notifier(self):
        stack = self.soak.stack
        stack.kill("notifier")
        stack.start("notifier")
        port = int(stack.env["BRIDGE_NOTIFIER_RPC"].rsplit(":", 1)[1])
        proc = psutil.Process(stack.procs["notifier"].pid)
        took = _until(lambda: any(c.laddr.port == port and c.status == psutil.CONN_LISTEN
                                  for c in proc.net_connections("tcp")), time.monotonic() + RECOVERY_DEADLINE)
        return _took(took, "listening again")

    def kill_worker(self):
        master = psutil.Process(self.soak.stack.procs["gateway"].pid)
        workers = sorted(c.pid for c in master.children())
        if not workers:
            return "no gateway worker to kill"
        victim = self.rng.choice(workers)
        os.kill(victim, signal.SIGKILL)

        def respawned():
            alive = [c.pid for c in master.children() if c.status() != psutil.STATUS_ZOMBIE]
            return victim not in alive and len(alive) >= len(workers)
        took = _until(respawned, time.monotonic() + RECOVERY_DEADLINE)
        return f"worker {victim} killed; " + _took(took, "replaced")

    def stop_hub(self):
        stack = self.soak.stack
        stack.signal("hub", signal.SIGSTOP)
        try:
            time.sleep(STOP_SECONDS)
        finally:
            stack.signal("hub", signal.SIGCONT)
        return f"hub stopped {STOP_SECONDS:g} s"

    def backlog(self):
        soak = self.soak
        accepted, attempted = soak.bulk_publisher.burst(BACKLOG_COUNT, BACKLOG_BYTES, RECOVERY_DEADLINE)
        keys = {(p.pub, p.n) for p in soak.bulk_publisher.records() if p.accepted}
        soak.backlog_client.gate.set()
        try:
            took = _until(lambda: soak.backlog_client.log.has_all(keys), time.monotonic() + RECOVERY_DEADLINE)
        finally:
            soak.backlog_client.gate.clear()
        got = len(keys & soak.backlog_client.log.keys)
        drained = f"drained after {took:.1f} s" if took is not None else \
            f"NOT drained within {RECOVERY_DEADLINE:.0f} s ({got} of {len(keys)} received so far)"
        return f"{accepted} of {attempted} x {BACKLOG_BYTES // 1000} KB accepted; {drained}"

    def idle_subscribers(self):
        stack = self.soak.stack
        channels = sorted(self.soak.busy_channels)
        made = 0
        deadline = time.monotonic() + 2 * RECOVERY_DEADLINE
        conn = None
        while made < IDLE_COUNT and time.monotonic() < deadline:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=5)
                status, body = _post(conn, "/ws/handshake", {"client_type": "idle", "protocol_version": "1.0"})
                if status == 200:
                    status, _ = _post(conn, "/ws/send", {"client_id": body["client_id"], "message": {
                        "type": "subscribe", "channels": channels}})
                if status == 200:
                    made += 1
                else:
                    conn.close()
                    conn = None
                    time.sleep(0.1)
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.1)
        if conn is not None:
            conn.close()
        self.soak.idle_made += made
        return f"{made} of {IDLE_COUNT} idle subscribers made"


def _post(conn, path, body):
    conn.request("POST", path, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    raw = resp.read()
    return resp.status, json.loads(raw) if resp.status == 200 else None
