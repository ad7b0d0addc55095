"""The hub SIGKILLed and restarted on its store: clients, queues and seqs carry on; resume by secret."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from tests.system.durable_support import PollingClient, Publisher, check_delivery

CLIENTS = 50
MESSAGES = 10_000


def test_sigkill_mid_stream_every_acknowledged_message_arrives_once_in_order(stack_factory):
    stack = stack_factory({"BRIDGE_QUEUE_SIZE": str(MESSAGES + 100), "BRIDGE_HUB_TIMEOUT": "5"})
    gateway_pid = stack.procs["gateway"].pid
    clients = [PollingClient(stack.http_port, stack.handshake("lightroom", ["stream"])) for _ in range(CLIENTS)]
    done = threading.Event()
    deadline = time.monotonic() + 90

    def run(client):
        while time.monotonic() < deadline and not any(m.get("type") == "end" for m in client.received[-5:]):
            client.poll_once(wait=1)
        client.close()

    publisher = Publisher(stack.env["BRIDGE_HUB_RPC"])
    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(run, c) for c in clients]
        for n in range(MESSAGES):
            if n == MESSAGES // 2:
                publisher.receive(0)
                acked_before = len(publisher.acked)
                received_before = sum(len(c.received) for c in clients)
                stack.kill("hub")  # requests in flight, replies unsent, polls parked
                unanswered = publisher.forget_pending()
                stack.start("hub")
                stack.wait_ready()
            publisher.send(("tick", n), {"type": "tick", "n": n}, "stream")
        publisher.send(("end", 0), {"type": "end"}, "stream")
        assert publisher.drain(time.monotonic() + 20)
        for f in futures:
            f.result(timeout=max(1, deadline - time.monotonic()))
        done.set()
    publisher.close()

    acked = [n for kind, n in publisher.acked if kind == "tick"]
    assert acked_before > 1000 and received_before > 0  # the kill really came mid-stream
    assert len(acked) >= MESSAGES - unanswered - 1
    report = {"lost": 0, "duplicated": 0, "reordered": 0}
    for client in clients:
        ticks = [m for m in client.received if m["type"] == "tick"]
        assert client.received[-1]["type"] == "end", (client.client_id, len(client.received))
        for name, count in check_delivery(ticks, acked).items():
            report[name] += count
    assert report == {"lost": 0, "duplicated": 0, "reordered": 0}
    assert stack.procs["gateway"].pid == gateway_pid  # the gateway needed no restart
    ids = {c["id"] for c in stack.get("/ws/clients").json["clients"]}
    assert {c.client_id for c in clients} <= ids


def test_resume_with_the_right_secret_gets_the_queue_and_a_wrong_one_does_not(stack_factory):
    stack = stack_factory()
    r = stack.post("/ws/handshake", {"client_type": "lightroom", "protocol_version": "1.0"})
    cid, secret = r.json["client_id"], r.json["client_secret"]
    assert r.json["resumed"] is False
    stack.post("/ws/send", {"client_id": cid, "client_secret": secret,
                            "message": {"type": "subscribe", "channels": ["photos"]}})
    for n in range(3):
        assert stack.post("/ws/broadcast", {"message": {"type": "step", "n": n}, "channel": "photos"}).status == 200
    stack.kill("hub")  # and the resume works across a crash too
    stack.start("hub")
    stack.wait_ready()

    wrong = stack.post("/ws/handshake", {"client_type": "lightroom", "client_id": cid, "client_secret": "guess"})
    assert wrong.status == 200 and wrong.json["resumed"] is False and wrong.json["client_id"] != cid
    other = stack.poll(wrong.json["client_id"]).json["messages"]
    assert [m["type"] for m in other] == ["connection_established"]  # never someone else's queue

    right = stack.post("/ws/handshake", {"client_type": "lightroom", "client_id": cid, "client_secret": secret})
    assert right.status == 200 and right.json["resumed"] is True
    assert right.json["client_id"] == cid and right.json["client_secret"] == secret
    msgs = stack.poll(cid).json["messages"]
    assert [m["type"] for m in msgs] == ["connection_established", "step", "step", "step"]
    assert [m["seq"] for m in msgs] == [1, 2, 3, 4]

    half = stack.post("/ws/handshake", {"client_type": "lightroom", "client_id": cid})
    assert half.status == 400 and half.json["field"] == "client_secret"


def test_parked_polls_at_the_kill_are_answered_and_the_restarted_hub_serves_them(stack_factory):
    stack = stack_factory({"BRIDGE_HUB_TIMEOUT": "5"})
    cid = stack.handshake("lightroom", ["jobs"])
    with ThreadPoolExecutor(1) as pool:
        parked = pool.submit(stack.poll, cid, 20)
        stack.wait_parked(cid)
        stack.kill("hub")
        r = parked.result(timeout=10)
    assert r.status == 503 and r.json["code"] == "hub_unavailable"  # answered, not left hanging
    stack.start("hub")
    stack.wait_ready()
    assert stack.post("/ws/broadcast", {"message": {"type": "after"}, "channel": "jobs"}).json["delivered"] == 1
    assert [m["type"] for m in stack.poll(cid).json["messages"]] == ["after"]
