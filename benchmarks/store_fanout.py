"""What the store's commit costs the hub in a fan-out: ``python -m benchmarks.store_fanout [CLIENTS] [ROUNDS]``.

A hub (in this process, no sockets) on a SQLite store in a temporary
folder, CLIENTS sessions (default 1 000) on one channel. Each round
publishes one message to the channel and commits (the store writes that
message's queue entries for every subscriber), then every client polls
with its ``ack`` and the hub commits again (heads move; written at the
checkpoint). Prints the median of ROUNDS (default 50) for each commit, in
ms and in µs per client: the part of the hub's CPU per poll answer that
durability takes (docs/PERFORMANCE.md, "What bounds each missed target").
"""

import statistics
import sys
import tempfile
import time
from pathlib import Path

from services import protocol
from services.hub.config import HubConfig
from services.hub.hub import Hub
from services.hub.requests import PollRequest
from services.hub.store import SqliteStore


def run(clients=1000, rounds=50):
    """``(publish commit ms, poll-round commit ms)``, medians of ``rounds``."""
    folder = tempfile.mkdtemp(prefix="bridge-store-fanout-")
    store = SqliteStore(Path(folder) / "hub.sqlite3")
    hub = Hub(HubConfig(queue_size=1000), lambda *reply: None, store=store)
    hub.restore(store.load())
    sessions = []
    for _ in range(clients):
        session = hub.create_session("bench")
        hub.subscribe(session, ["fan"])
        hub.poll(session, PollRequest(b"bench", 0, 0.0, None))  # its welcome message
        sessions.append(session)
    store.commit(hub.changes)
    publish, polls = [], []
    try:
        for k in range(rounds + 5):
            hub.publish(protocol.TARGET_CHANNEL, {"type": "bench", "i": k, "t": time.monotonic()}, "fan")
            started = time.perf_counter()
            store.commit(hub.changes)
            publish.append(time.perf_counter() - started)
            for session in sessions:
                hub.poll(session, PollRequest(b"bench", 1, 0.0, session.next_seq - 1, json=True))
            started = time.perf_counter()
            store.commit(hub.changes)
            polls.append(time.perf_counter() - started)
    finally:
        store.close()
    return statistics.median(publish[5:]) * 1000, statistics.median(polls[5:]) * 1000


def main(argv):
    clients, rounds = ([int(a) for a in argv[:2]] + [1000, 50][len(argv[:2]):])[:2]
    publish, polls = run(clients, rounds)
    print(f"{clients} clients, median of {rounds} rounds:")
    print(f"  commit after one message to all of them: {publish:.2f} ms ({publish * 1000 / clients:.2f} µs a client)")
    print(f"  commit after a round of acknowledged polls: {polls:.2f} ms ({polls * 1000 / clients:.2f} µs a client)")


if __name__ == "__main__":
    main(sys.argv[1:])
