"""Operator listings larger than one hub reply: /ws/clients comes in pages, /ws/jobs lists the newest that fit.

A listing past the link's reply limit (4 MiB) used to be refused by the hub
and answered 500; every client and every job must still be reachable.
"""

import json

import pytest

from services import protocol
from tests.stack import Stack
from tests.system.operator_support import bridge, connect, poll

CHANNELS = [f"c{n:03d}-" + "x" * 59 for n in range(1000)]  # 64-character names
CLIENTS = 70  # each lists its 1 000 subscriptions: about 66 KB, 4.6 MB for all


@pytest.fixture(scope="module")
def crowded(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("listings"), {
        "BRIDGE_MAX_CHANNELS_PER_CLIENT": "1000", "BRIDGE_MAX_CHANNELS_PER_SUBSCRIBE": "1000",
        "BRIDGE_HANDSHAKE_RATE": "0",
    })
    stack.start("hub", "notifier", "gateway").wait_ready()
    ids = set()
    for _ in range(CLIENTS):
        client_id, _ = connect(stack, "lightroom", CHANNELS)
        ids.add(client_id)
    yield stack, ids
    stack.stop_all()


def pages(stack, query=""):
    """Every page of /ws/clients, following ``next``."""
    out = []
    r = stack.get("/ws/clients" + query)
    while True:
        assert r.status == 200, r
        out.append(r.json)
        if "next" not in r.json:
            return out
        sep = "&" if query else "?"
        r = stack.get(f"/ws/clients{query}{sep}after={r.json['next']}")


def test_a_listing_past_one_reply_comes_in_pages_with_every_client_once(crowded):
    stack, ids = crowded
    got = pages(stack)
    assert len(got) >= 5  # 4.6 MB in pages of at most 1 MiB
    listed = [c["id"] for page in got for c in page["clients"]]
    assert len(listed) == len(set(listed)) == CLIENTS and set(listed) == ids
    assert listed == sorted(listed)
    assert all(page["count"] == CLIENTS for page in got)
    assert all(len(json.dumps(page)) < 2 * protocol.POLL_REPLY_BYTES for page in got)


def test_limit_and_after_page_through_in_id_order(crowded):
    stack, ids = crowded
    got = pages(stack, "?limit=3")
    assert all(len(page["clients"]) <= 3 for page in got)
    listed = [c["id"] for page in got for c in page["clients"]]
    assert listed == sorted(ids)
    # a cursor that names a client gone since still lists what follows it
    r = stack.get("/ws/clients?limit=2&after=" + listed[10][:-1] + "~")
    assert r.status == 200 and [c["id"] for c in r.json["clients"]] == listed[11:13]


@pytest.mark.parametrize("query", ["limit=0", "limit=-1", "limit=abc", "limit=1e400", "after=" + "a" * 201])
def test_bad_paging_is_refused_with_the_error_shape(crowded, query):
    stack, _ = crowded
    r = stack.get("/ws/clients?" + query)
    assert r.status == 400, r
    assert r.json["success"] is False and r.json["field"] in ("limit", "after")


def test_the_cli_lists_every_page(crowded):
    stack, ids = crowded
    r = bridge(stack, "clients", "--json")
    assert r.returncode == 0, r.stderr
    assert {c["id"] for c in json.loads(r.stdout)} == ids


def test_jobs_past_one_reply_list_the_newest_and_say_how_many_are_left_out(crowded):
    stack, _ = crowded
    big = "r" * 200_000
    for n in range(25):  # 5 MB of results
        r = stack.post("/ws/notify/job_complete", {"job_id": f"job-{n:02d}", "success": True,
                                                   "result": {"n": n, "big": big}})
        assert r.status == 200, r
    r = stack.get("/ws/jobs")
    assert r.status == 200, r
    listed = [j["job_id"] for j in r.json["jobs"]]
    assert r.json["count"] == 25 and r.json["left_out"] == 25 - len(listed) > 0
    assert listed == [f"job-{n:02d}" for n in range(25 - len(listed), 25)]  # the newest, oldest first
    assert stack.get("/ws/jobs/job-00").json["job"]["result"]["n"] == 0  # a left-out job is still read by id
    # a new subscriber to "jobs" gets a snapshot that fits one poll answer
    client_id, headers = connect(stack, "lightroom", ["jobs"])
    snapshot = [m for m in poll(stack, client_id, headers) if m["type"] == "jobs_snapshot"]
    assert snapshot and snapshot[0]["left_out"] > 0 and snapshot[0]["jobs"][-1]["job_id"] == "job-24"
