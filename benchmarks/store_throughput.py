"""How much the durable store costs: publish throughput of a real hub, ``:memory:`` against SQLite.

    .venv/bin/python -m benchmarks.store_throughput [--messages 20000] [--clients 50]

Starts the real hub process (the Procfile's command) twice on free ports,
once per store, subscribes ``--clients`` sessions to one channel, then
pipelines ``--messages`` publish requests over a DEALER, as the gateway
does, and reports acknowledged publishes per second and queued deliveries
per second. The clients then drain everything with acknowledged polls, so
the store's deletes are measured too. Each run is bounded by a deadline.
"""

import argparse
import sys
import tempfile
import time

import zmq

from services import protocol
from tests.stack import Stack
from tests.system.durable_support import Publisher


def _call(sock, op, req_id, **fields):
    sock.send_multipart(protocol.encode_request(op, req_id, **fields))
    if not sock.poll(10_000):
        raise RuntimeError(f"the hub did not answer {op}")
    return protocol.decode_reply(sock.recv_multipart())


def run(store, messages, clients, workdir):
    """One measurement; returns a dict of figures."""
    env = {"BRIDGE_QUEUE_SIZE": str(messages + 10), "BRIDGE_LOG_LEVEL": "WARNING"}
    if store == ":memory:":
        env["BRIDGE_STORE"] = ":memory:"
    stack = Stack(workdir, env).start("hub")
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(stack.env["BRIDGE_HUB_RPC"])
    try:
        _call(sock, protocol.OP_STATUS, 0)
        ids = []
        for n in range(clients):
            rep = _call(sock, protocol.OP_HANDSHAKE, n + 1, client_type="bench", protocol_version="1.0")
            cid = rep["client_id"]
            _call(sock, protocol.OP_SEND, 1000 + n, client_id=cid, message={"type": "subscribe", "channels": ["bench"]})
            ids.append(cid)
        pub = Publisher(stack.env["BRIDGE_HUB_RPC"], window=500)
        started = time.perf_counter()
        for n in range(messages):
            pub.send(n, {"type": "photo_imported", "photo_id": n, "path": f"/photos/{n:06d}.dng"}, "bench")
        if not pub.drain(time.monotonic() + 120):
            raise RuntimeError("publishes were not all acknowledged in time")
        publish_s = time.perf_counter() - started
        pub.close()
        started = time.perf_counter()
        req = 10_000
        for cid in ids:
            ack = 0
            while True:
                req += 1
                rep = _call(sock, protocol.OP_POLL, req, client_id=cid, ack=ack, wait=0)
                if not rep["messages"]:
                    break
                ack = rep["messages"][-1]["seq"]
        drain_s = time.perf_counter() - started
    finally:
        sock.close()
        stack.stop_all()
    return {
        "store": store,
        "publishes_per_s": round(messages / publish_s),
        "deliveries_queued_per_s": round(messages * clients / publish_s),
        "drain_deliveries_per_s": round(messages * clients / drain_s),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for store in (":memory:", "sqlite"):
            results.append(run(store, args.messages, args.clients, f"{tmp}/{store.strip(':')}"))
    for r in results:
        print(r)
    mem, disk = results
    print(f"sqlite/memory publish throughput: {disk['publishes_per_s'] / mem['publishes_per_s']:.2f}")
    print(f"sqlite/memory drain throughput:   {disk['drain_deliveries_per_s'] / mem['drain_deliveries_per_s']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
