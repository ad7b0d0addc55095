"""The seed's /ws HTTP API against the real hub and gateway (2 workers)."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

ISO_Z = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"


@pytest.fixture(scope="module")
def api(shared_stack):
    return shared_stack


@pytest.fixture(scope="module")
def pool():
    with ThreadPoolExecutor(8) as executor:
        yield executor


def send(api, client_id, message):
    return api.post("/ws/send", {"client_id": client_id, "message": message})


def types(response):
    return [m["type"] for m in response.json["messages"]]


def test_seed_connection_flow_step_by_step(api):
    r = api.post("/ws/handshake", {"client_type": "lightroom", "protocol_version": "1.0"})
    assert r.status == 200
    assert r.json["success"] is True and r.json["protocol_version"] == "1.0"
    assert r.json["server_time"].endswith("Z")
    client_id = r.json["client_id"]

    r = send(api, client_id, {"type": "register", "client_type": "lightroom", "client_name": "Lightroom Classic Plugin"})
    assert r.status == 200
    assert r.json["response"]["type"] == "registration_confirmed"
    assert r.json["response"]["client_name"] == "Lightroom Classic Plugin"

    r = send(api, client_id, {"type": "subscribe", "channels": ["jobs", "system", "photos"]})
    assert r.json["response"]["type"] == "subscription_confirmed"
    assert r.json["response"]["channels"] == ["jobs", "system", "photos"]

    r = api.poll(client_id)
    assert r.status == 200 and r.json["success"] is True
    welcome, jobs, system = r.json["messages"]
    assert welcome["type"] == "connection_established" and welcome["client_id"] == client_id
    assert welcome["seq"] == 1
    # Late joiners first get the latest state of jobs and system (docs/DURABILITY.md).
    assert (jobs["type"], jobs["channel"], system["type"], system["channel"]) == \
        ("jobs_snapshot", "jobs", "system_snapshot", "system")
    assert [jobs["seq"], system["seq"]] == [2, 3]
    assert "timestamp" in r.json

    r = api.post("/ws/notify/job_progress", {"job_id": "job123", "stage": "processing", "progress": 50,
                                             "message": "Applying settings..."})
    assert r.status == 200 and r.json["delivered"] >= 1
    r = api.poll(client_id)
    (msg,) = r.json["messages"]
    assert msg["type"] == "job_progress" and msg["job_id"] == "job123" and msg["progress"] == 50
    assert msg["stage"] == "processing" and msg["message"] == "Applying settings..."
    assert msg["channel"] == "jobs" and msg["seq"] == 4
    import re
    assert re.match(ISO_Z, msg["timestamp"])

    r = send(api, client_id, {"type": "ping"})
    assert r.json["response"]["type"] == "pong" and "timestamp" in r.json["response"]

    r = api.get("/ws/clients")
    (me,) = [c for c in r.json["clients"] if c["id"] == client_id]
    assert me["client_type"] == "lightroom" and me["subscriptions"] == ["jobs", "photos", "system"]
    assert me["connected_at"] and me["last_poll"]
    assert r.json["count"] == len(r.json["clients"])

    r = api.post("/ws/disconnect", {"client_id": client_id})
    assert r.status == 200 and r.json["success"] is True
    r = api.poll(client_id)
    assert r.status == 404 and r.json["success"] is False and r.json["code"] == "unknown_client"


def test_empty_poll_is_200_with_empty_list(api):
    client_id = api.handshake()
    r = api.poll(client_id)
    assert r.status == 200 and r.json["messages"] == [] and r.json["dropped"] == 0


def test_handshake_defaults_and_version_check(api):
    r = api.post("/ws/handshake", [])
    assert r.status == 200 and r.json["client_id"]
    r = api.post("/ws/handshake", {"client_type": "lightroom", "protocol_version": "2.0"})
    assert r.status == 400 and r.json["code"] == "unsupported_version"
    assert "1.x" in r.json["error"]
    r = api.post("/ws/handshake", {"client_type": "lightroom", "protocol_version": "one"})
    assert r.status == 400 and r.json["field"] == "protocol_version"
    r = api.post("/ws/handshake", {"client_type": "bad type!"})
    assert r.status == 400 and r.json["code"] == "bad_request"
    r = api.post("/ws/handshake", {"client_type": "lightroom", "protocol_version": "1.7"})
    assert r.status == 200


def test_targets_all_channel_type_and_one_client(api):
    lr_jobs = api.handshake("lightroom", ["jobs"])
    lr_plain = api.handshake("lightroom")
    dash_jobs = api.handshake("dashboard", ["jobs"])

    def drain(cid):
        return [(m["type"], m.get("n")) for m in api.poll(cid).json["messages"]]

    r = api.post("/ws/broadcast", {"message": {"type": "note", "n": 1}})
    assert r.status == 200 and r.json["delivered"] >= 3
    r = api.post("/ws/broadcast", {"message": {"type": "note", "n": 2}, "channel": "jobs"})
    assert r.json["delivered"] >= 2
    r = api.post("/ws/send_to_type/dashboard", {"message": {"type": "note", "n": 3}})
    assert r.json["delivered"] >= 1
    r = api.post(f"/ws/send/{lr_plain}", {"message": {"type": "note", "n": 4}})
    assert r.status == 200 and r.json["delivered"] == 1

    assert drain(lr_jobs) == [("note", 1), ("note", 2)]
    assert drain(lr_plain) == [("note", 1), ("note", 4)]
    assert drain(dash_jobs) == [("note", 1), ("note", 2), ("note", 3)]


def test_channel_label_only_on_channel_messages(api):
    cid = api.handshake("lightroom", ["system"])
    api.post("/ws/notify/system_status", {"status": {"cpu_usage": 45.2, "gpu_temp": 62}})
    api.post(f"/ws/send/{cid}", {"message": {"type": "notification", "message": "Hello"}})
    status, direct = api.poll(cid).json["messages"]
    assert status["type"] == "system_status" and status["channel"] == "system"
    assert status["status"] == {"cpu_usage": 45.2, "gpu_temp": 62}
    assert direct["type"] == "notification" and "channel" not in direct


def test_job_complete_becomes_completed_or_failed(api):
    cid = api.handshake("lightroom", ["jobs"])
    r = api.post("/ws/notify/job_complete", {"job_id": "j1", "success": True, "result": {"photos": 3}})
    assert r.status == 200 and r.json["type"] == "job_completed"
    r = api.post("/ws/notify/job_complete", {"job_id": "j2", "success": False, "error": "GPU out of memory"})
    assert r.json["type"] == "job_failed"
    r = api.post("/ws/notify/job_complete", {"job_id": "j3", "success": True, "result": []})
    assert r.status == 200
    done, failed, empty = api.poll(cid).json["messages"]
    assert (done["type"], done["job_id"], done["result"]) == ("job_completed", "j1", {"photos": 3})
    assert (failed["type"], failed["job_id"], failed["error"]) == ("job_failed", "j2", "GPU out of memory")
    assert empty["result"] == {}


def test_unsubscribe_stops_delivery(api):
    cid = api.handshake("lightroom", ["jobs", "photos"])
    r = send(api, cid, {"type": "unsubscribe", "channels": ["jobs"]})
    assert r.json["response"]["type"] == "unsubscription_confirmed"
    assert r.json["response"]["subscriptions"] == ["photos"]
    api.post("/ws/broadcast", {"message": {"type": "a"}, "channel": "jobs"})
    api.post("/ws/broadcast", {"message": {"type": "b"}, "channel": "photos"})
    assert types(api.poll(cid)) == ["b"]


def test_application_messages_from_clients_are_acknowledged(api):
    cid = api.handshake()
    r = send(api, cid, {"type": "custom_event", "data": "some data"})
    assert r.status == 200 and r.json["response"]["type"] == "ack"
    assert r.json["response"]["received_type"] == "custom_event"


def test_parked_poll_returns_promptly_after_broadcast(api, pool):
    cid = api.handshake("lightroom", ["jobs"])
    started = time.monotonic()
    parked = pool.submit(api.poll, cid, 20)
    # Publish until the poll is parked in the hub (visible as "polling" in /ws/clients).
    api.wait_parked(cid)
    api.post("/ws/broadcast", {"message": {"type": "wake"}, "channel": "jobs"})
    r = parked.result(timeout=15)
    assert types(r) == ["wake"]
    assert time.monotonic() - started < 10  # long before its 20 s wait ended


def test_poll_wait_ends_empty_and_is_capped(api):
    cid = api.handshake()
    started = time.monotonic()
    r = api.poll(cid, wait=0.3)
    assert r.status == 200 and r.json["messages"] == []
    assert time.monotonic() - started >= 0.25


def test_second_poll_replaces_first(api, pool):
    cid = api.handshake()
    first = pool.submit(api.poll, cid, 20)
    api.wait_parked(cid)
    second = pool.submit(api.poll, cid, 20)
    r1 = first.result(timeout=10)
    assert r1.status == 200 and r1.json["messages"] == [] and r1.json.get("superseded") is True
    api.post(f"/ws/send/{cid}", {"message": {"type": "only-once"}})
    r2 = second.result(timeout=10)
    assert types(r2) == ["only-once"]


def test_disconnect_releases_parked_poll_at_once(api, pool):
    cid = api.handshake()
    parked = pool.submit(api.poll, cid, 20)
    api.wait_parked(cid)
    started = time.monotonic()
    assert api.post("/ws/disconnect", {"client_id": cid}).status == 200
    r = parked.result(timeout=10)
    assert r.status == 200 and r.json["messages"] == [] and r.json.get("closed") is True
    assert time.monotonic() - started < 5


def test_repoll_with_old_ack_returns_the_same_messages(api):
    cid = api.handshake("lightroom", ["photos"])
    for n in range(3):
        api.post("/ws/broadcast", {"message": {"type": "step", "n": n}, "channel": "photos"})
    first = api.poll(cid, ack=1).json["messages"]
    assert [m["seq"] for m in first] == [2, 3, 4]
    # The response was "lost": poll again with the same ack.
    again = api.poll(cid, ack=1).json["messages"]
    assert again == first
    # Acknowledge them: they are gone, new ones keep counting.
    api.post("/ws/broadcast", {"message": {"type": "step", "n": 3}, "channel": "photos"})
    rest = api.poll(cid, ack=4).json["messages"]
    assert [(m["seq"], m["n"]) for m in rest] == [(5, 3)]


def test_status_summary(api):
    api.handshake("lightroom", ["jobs"])
    r = api.get("/ws/status")
    assert r.status == 200 and r.json["success"] is True
    status = r.json["status"]
    assert status["running"] is True and status["clients"] >= 1
    assert status["channels"]["jobs"] >= 1 and status["queue_size"] == 100


@pytest.mark.parametrize("method,path,body,status,field", [
    ("POST", "/ws/send", {"message": {"type": "ping"}}, 400, "client_id"),
    ("POST", "/ws/send", {"client_id": "x"}, 400, "message"),
    ("POST", "/ws/send", {"client_id": "x", "message": {"type": "ping"}}, 404, None),
    ("POST", "/ws/send", {"client_id": "x", "message": {"no": "type"}}, 400, "message.type"),
    ("POST", "/ws/send", {"client_id": "x", "message": {"type": "bad type"}}, 400, "message.type"),
    ("POST", "/ws/send", {"client_id": "x", "message": "ping"}, 400, "message"),
    ("POST", "/ws/disconnect", {}, 400, "client_id"),
    ("POST", "/ws/disconnect", {"client_id": "nobody"}, 404, None),
    ("GET", "/ws/poll", None, 400, "client_id"),
    ("GET", "/ws/poll?client_id=nobody", None, 404, None),
    ("GET", "/ws/poll?client_id=x&wait=soon", None, 400, "wait"),
    ("GET", "/ws/poll?client_id=x&wait=-1", None, 400, "wait"),
    ("GET", "/ws/poll?client_id=x&ack=1.5", None, 400, "ack"),
    ("POST", "/ws/broadcast", {}, 400, "message"),
    ("POST", "/ws/broadcast", {"message": {"type": "x"}, "channel": "bad channel"}, 400, "channel"),
    ("POST", "/ws/send/nobody", {"message": {"type": "x"}}, 404, None),
    ("POST", "/ws/send_to_type/lightroom", {"message": {}}, 400, "message.type"),
    ("POST", "/ws/notify/job_progress", {"job_id": "j", "progress": 101}, 400, "progress"),
    ("POST", "/ws/notify/job_progress", {"job_id": "j", "progress": "50"}, 400, "progress"),
    ("POST", "/ws/notify/job_progress", {"progress": 5}, 400, "job_id"),
    ("POST", "/ws/notify/job_complete", {"job_id": "j"}, 400, "success"),
    ("POST", "/ws/notify/system_status", {"status": 5}, 400, "status"),
    ("POST", "/ws/notify/unknown_kind", {}, 404, None),
    ("POST", "/ws/cleanup", {"timeout_minutes": -1}, 400, "timeout_minutes"),
    ("POST", "/ws/cleanup", {"timeout_minutes": "5"}, 400, "timeout_minutes"),
])
def test_bad_requests_get_clear_errors(api, method, path, body, status, field):
    r = api.request(method, path, body=body)
    assert r.status == status, r
    assert r.json["success"] is False and isinstance(r.json["error"], str) and r.json["error"]
    if field:
        assert r.json.get("field") == field, r


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe", b"null"])
def test_bodies_that_are_not_json_objects_get_400(api, raw):
    r = api.request("POST", "/ws/handshake", raw_body=raw, headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.json["success"] is False


def test_deeply_nested_message_gets_400_not_500(api):
    cid = api.handshake()
    deep = {"type": "deep"}
    for _ in range(200):
        deep = {"type": "deep", "inner": deep}
    r = send(api, cid, deep)
    assert r.status == 400 and r.json["success"] is False


def test_body_over_the_limit_gets_413(api):
    r = api.request("POST", "/ws/broadcast", raw_body=b"{" + b" " * (1024 * 1024 + 10) + b"}",
                    headers={"Content-Type": "application/json"})
    assert r.status == 413 and r.json["success"] is False


def test_wrong_method_and_unknown_route(api):
    r = api.request("DELETE", "/ws/poll")
    assert r.status == 405 and r.json["success"] is False and "GET" in r.headers.get("allow", "")
    r = api.get("/ws/handshake")
    assert r.status == 405
    r = api.get("/ws/nothing-here")
    assert r.status == 404 and r.json["success"] is False


def test_cleanup_on_demand(api):
    idle = api.handshake()
    r = api.post("/ws/cleanup", {"timeout_minutes": 0})
    assert r.status == 200 and idle in r.json["removed_clients"]
    assert r.json["removed"] == len(r.json["removed_clients"])
    assert api.poll(idle).status == 404
