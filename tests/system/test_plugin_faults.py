"""The Lua client under faults: hub restarts, a gateway that starts late, polls that time out.

The client is the plug-in's own code under real lua5.1 (tests/lua/harness.py);
no test calls reconnect(): the client must recover by itself.
"""

import shutil
import threading

import pytest

from tests.system.plugin_support import FAST, notify_progress, progress_ids
from tests.lua.lossy_proxy import LossyProxy
from tests.stack import wait_for

pytestmark = pytest.mark.skipif(not shutil.which("lua5.1"), reason="needs lua5.1: run `make system-deps`")



@pytest.mark.parametrize("store", ["durable", "memory"])
def test_hub_restart_client_keeps_receiving_without_help(stack_factory, lua_clients, store):
    """A hub that forgot the client answers 404 unknown_client: handshake, register, subscribe again at once.

    With the durable store the restarted hub may still know the client; either
    way delivery resumes with no call from the test.
    """
    env = {"BRIDGE_HUB_TIMEOUT": "1"}
    if store == "memory":
        env["BRIDGE_STORE"] = ":memory:"
    stack = stack_factory(env=env)
    client = lua_clients(stack, options=FAST)
    first_id = client.wait("connected")[0]["data"]["client_id"]
    assert notify_progress(stack, "before") == 1
    client.wait("listener", lambda e: e["data"]["job_id"] == "before")

    stack.kill("hub")
    stack.start("hub").wait_ready()

    # the client notices by itself; the test only publishes until it hears one
    def delivered_after_restart():
        notify_progress(stack, "after")
        return "after" in progress_ids(client)
    wait_for(delivered_after_restart, 20, interval=0.3, message="delivery after the hub restart\n" + client.describe())

    latest_id = client.client_id
    if store == "memory":
        assert latest_id != first_id
        assert client.of("connected")[-1]["data"]["resumed"] is False
        assert any("no longer knows client " + first_id in line for line in client.log_lines())
    clients = stack.get("/ws/clients").json["clients"]
    me = next(c for c in clients if c["id"] == latest_id)
    assert me["client_type"] == "lightroom" and me["client_name"] == "Lightroom Classic Plugin"
    assert sorted(me["subscriptions"]) == ["jobs", "photos", "system"]
    assert progress_ids(client).count("before") == 1


def test_client_dropped_by_the_bridge_handshakes_again_at_once(stack, lua_clients):
    """The bridge drops the client: its parked poll is answered `closed`; it handshakes again, no backoff."""
    client = lua_clients(stack, options=FAST)
    first_id = client.wait("connected")[0]["data"]["client_id"]
    r = stack.post("/ws/disconnect", {"client_id": first_id})
    assert r.status == 200, r
    client.wait("connected", lambda e: e["data"]["client_id"] != first_id)
    assert client.of("reconnecting") == []
    assert notify_progress(stack, "again") == 1
    client.wait("listener", lambda e: e["data"]["job_id"] == "again")


def test_gateway_down_at_start_then_connects_when_it_comes_up(stack_factory, lua_clients):
    stack = stack_factory(services=("hub",), ready=False)
    options = dict(FAST, MAX_RECONNECT_ATTEMPTS=3, SLOW_RETRY_DELAY=1.5)
    client = lua_clients(stack, options=options)
    # an immediate retry, growing delays, then the error event after MAX_RECONNECT_ATTEMPTS; it never gives up
    client.wait("error", timeout=15)
    retries = client.wait("reconnecting", count=4, timeout=15)
    delays = [e["data"]["delay"] for e in retries]
    assert [e["data"]["attempt"] for e in retries[:4]] == [1, 2, 3, 4]
    # the first retry is immediate, then the delay doubles from RECONNECT_DELAY
    assert delays[0] == 0 and 0.15 <= delays[1] <= 0.2 and delays[2] <= 0.4 and 1.1 <= delays[3] <= 1.5, delays
    assert retries[0]["data"]["reason"] == "cannotConnectToHost"
    error = client.of("error")[0]["data"]
    assert error["code"] == "unreachable" and error["attempts"] == 3
    assert client.of("connected") == []

    stack.start("gateway").wait_ready()
    client.wait("connected", timeout=15)
    assert notify_progress(stack, "late") == 1
    client.wait("listener", lambda e: e["data"]["job_id"] == "late")


def test_no_message_lost_or_duplicated_across_forced_poll_timeouts(stack, lua_clients):
    """LrHttp gives up on polls before the gateway answers them (POLL_TIMEOUT < POLL_WAIT).

    Some answers are then written to a connection the client has closed; the
    next poll's ack makes the hub deliver them again, and the client's seq
    check processes each exactly once.
    """
    options = {"POLL_WAIT": 1.5, "POLL_TIMEOUT": 0.7, "RECONNECT_DELAY": 0.05, "RECONNECT_MAX_DELAY": 0.1}
    client = lua_clients(stack, options=options, deadline=90)
    client.wait("connected")
    client.wait("message", type_="connection_established")
    bursts, size = 6, 8
    total = bursts * size
    done = threading.Event()
    failures = []

    def publish():
        # bursts separated by about the client's poll timeout, so that some land
        # just as a poll times out, while the hub still holds it
        n = 0
        for burst in range(bursts):
            if done.wait(0.70 + 0.02 * burst):
                return
            for _ in range(size):
                try:
                    notify_progress(stack, f"n{n}", progress=n)
                except AssertionError as ex:
                    failures.append(ex)
                n += 1

    publisher = threading.Thread(target=publish, name="publisher")
    publisher.start()
    try:
        client.wait("listener", lambda e: e["data"]["job_id"] == f"n{total - 1}", timeout=60)
    finally:
        done.set()
        publisher.join(10)
    assert failures == []
    assert progress_ids(client) == [f"n{i}" for i in range(total)]
    seqs = [e["data"]["seq"] for e in client.of("message")]
    assert seqs == sorted(set(seqs))
    client.command(stack, "status")
    status = client.wait("status")[0]["data"]
    # a timed-out poll is polled again at once: no disconnection, no backoff
    assert status["cuts"] > 0, "no poll timed out: the test did not exercise what it claims"
    assert client.of("reconnecting") == [] and client.of("disconnected") == []
    assert status["received"] == len(client.of("message")) and status["dropped"] == 0
    print(f"{status['cuts']} poll timeouts, {status['redelivered']} messages delivered again and skipped")


def test_poll_answers_lost_in_flight_are_delivered_again_exactly_once(stack, lua_clients):
    """A proxy withholds poll answers that carry messages until the client's LrHttp times out.

    The bridge produced those answers and the client never read them; its next
    poll acknowledges only what it processed, so the hub delivers them again.
    """
    budget = [3]

    def lose(request_line, answer):
        if request_line.startswith("GET /ws/poll") and b'"job_progress"' in answer and budget[0] > 0:
            budget[0] -= 1
            return True
        return False

    proxy = LossyProxy(stack.http_port, lose).start()
    try:
        options = {"POLL_WAIT": 1, "POLL_TIMEOUT": 1.5, "RECONNECT_DELAY": 0.05, "RECONNECT_MAX_DELAY": 0.1}
        client = lua_clients(stack, base_url=proxy.base_url, options=options)
        client.wait("connected")
        client.wait("message", type_="connection_established")
        for i in range(20):
            notify_progress(stack, f"m{i}", progress=i)
        client.wait("listener", lambda e: e["data"]["job_id"] == "m19", timeout=30)
        assert len(proxy.lost) == 3
        assert progress_ids(client) == [f"m{i}" for i in range(20)]
        seqs = [e["data"]["seq"] for e in client.of("message")]
        assert seqs == list(range(1, len(seqs) + 1))
        # each lost answer ended its poll with LrHttp's timeout: polled again at once, no reconnecting
        assert client.of("reconnecting") == []
        client.command(stack, "status")
        assert client.wait("status")[0]["data"]["cuts"] == 3
    finally:
        proxy.stop()
