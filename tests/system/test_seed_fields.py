"""Every answer the seed document (seeds/websocket-communication.md) shows, field by field, from the real stack.

The seed names these fields; the bridge may add more, never fewer. Its
``POST /ws/cleanup`` answered with ``removed_count``: kept beside this
bridge's own ``removed``.
"""

import pytest

from tests.system.operator_support import connect

SEED_HANDSHAKE = {"success", "client_id", "protocol_version", "server_time"}
SEED_POLL = {"success", "messages", "timestamp"}
SEED_SEND = {"success", "response"}
SEED_PONG = {"type", "timestamp"}
SEED_CLIENTS = {"success", "clients", "count"}
SEED_CLIENT = {"id", "client_type", "connected_at", "last_poll", "subscriptions"}
SEED_CLEANUP = {"success", "removed_count"}


@pytest.fixture(scope="module")
def api(shared_stack):
    return shared_stack


def fields(value, expected):
    """The names in ``expected`` that ``value`` lacks."""
    return expected - set(value)


def poll(api, client_id, headers):
    r = api.get(f"/ws/poll?client_id={client_id}", headers=headers)
    assert r.status == 200, r
    assert fields(r.json, SEED_POLL) == set()
    return r.json["messages"]


def test_handshake_poll_send_and_clients_carry_every_seed_field(api):
    r = api.post("/ws/handshake", {"client_type": "lightroom", "protocol_version": "1.0"})
    assert r.status == 200 and fields(r.json, SEED_HANDSHAKE) == set(), r
    assert r.json["success"] is True and r.json["protocol_version"] == "1.0"
    client_id = r.json["client_id"]
    headers = {"X-Client-Secret": r.json["client_secret"]} if r.json.get("client_secret") else {}
    # the seed's welcome message after the handshake
    assert "connection_established" in [m["type"] for m in poll(api, client_id, headers)]

    r = api.post("/ws/send", {"client_id": client_id, "message": {"type": "ping"}}, headers=headers)
    assert r.status == 200 and fields(r.json, SEED_SEND) == set(), r
    assert fields(r.json["response"], SEED_PONG) == set() and r.json["response"]["type"] == "pong"

    for message in ({"type": "register", "client_type": "lightroom", "client_name": "Lightroom Classic Plugin"},
                    {"type": "subscribe", "channels": ["jobs", "system", "photos"]}):
        r = api.post("/ws/send", {"client_id": client_id, "message": message}, headers=headers)
        assert r.status == 200 and r.json["success"] is True, r

    r = api.get("/ws/clients")
    assert r.status == 200 and fields(r.json, SEED_CLIENTS) == set(), r
    (listed,) = [c for c in r.json["clients"] if c["id"] == client_id]
    assert fields(listed, SEED_CLIENT) == set(), listed
    assert listed["client_type"] == "lightroom" and set(listed["subscriptions"]) == {"jobs", "system", "photos"}
    assert r.json["count"] == len(r.json["clients"])

    r = api.post("/ws/disconnect", {"client_id": client_id}, headers=headers)
    assert r.status == 200 and r.json["success"] is True


def test_notifications_reach_a_subscriber_with_the_seed_request_fields(api):
    client_id, headers = connect(api, "lightroom", ["jobs", "system"])
    poll(api, client_id, headers)
    sent = [
        ("/ws/notify/job_progress",
         {"job_id": "job123", "stage": "processing", "progress": 50, "message": "Applying settings..."}),
        ("/ws/notify/job_complete", {"job_id": "job123", "success": True, "result": {"photos": 3}}),
        ("/ws/notify/system_status", {"status": {"cpu_usage": 45.2, "gpu_temp": 62}}),
        ("/ws/broadcast", {"message": {"type": "system_status", "status": {"cpu_usage": 1.0}}, "channel": "system"}),
        (f"/ws/send/{client_id}", {"message": {"type": "notification", "message": "Hello"}}),
    ]
    for route, body in sent:
        r = api.post(route, body)
        assert r.status == 200 and r.json["success"] is True, (route, r)
    got = poll(api, client_id, headers)
    assert [m["type"] for m in got] == ["job_progress", "job_completed", "system_status", "system_status",
                                        "notification"]
    progress, complete, status, broadcast, direct = got
    assert {k: progress[k] for k in ("job_id", "stage", "progress", "message")} == sent[0][1]
    assert complete["job_id"] == "job123" and complete["result"] == {"photos": 3}
    assert status["status"] == {"cpu_usage": 45.2, "gpu_temp": 62}
    assert broadcast["status"] == {"cpu_usage": 1.0} and broadcast["channel"] == "system"
    assert direct["message"] == "Hello"


def test_status_answers_with_success(api):
    r = api.get("/ws/status")
    assert r.status == 200 and r.json["success"] is True and r.json["status"]["running"] is True


def test_cleanup_answers_with_the_seed_removed_count_and_removed(api):
    idle = [connect(api, "script")[0] for _ in range(2)]
    r = api.post("/ws/cleanup", {"timeout_minutes": 0})
    assert r.status == 200 and fields(r.json, SEED_CLEANUP) == set(), r
    assert set(idle) <= set(r.json["removed_clients"])
    assert r.json["removed_count"] == r.json["removed"] == len(r.json["removed_clients"]) >= 2
    r = api.post("/ws/cleanup", {"timeout_minutes": 60})
    assert r.status == 200 and r.json["removed_count"] == 0 and r.json["removed"] == 0
