"""The backend library against a notifier that is killed or hangs: sends fail within the timeout, losses are counted."""

import re
import signal
import time

import pytest

from services.notifier.client import NotifierUnavailable, Publisher
from tests.stack import ROOT, running, wait_for
from tests.system.notifier_support import collect, handshake, has, wait_for_notifier

TIMEOUT = 0.5
SLACK = 0.4  # process scheduling on a loaded machine, on top of the timeout


@pytest.fixture
def stack(tmp_path):
    yield from running(tmp_path / "acks", {"BRIDGE_STATUS_INTERVAL": "0", "BRIDGE_QUEUE_SIZE": "1000"})


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def test_sends_fail_within_the_timeout_while_the_notifier_is_killed_and_resume_after(stack):
    publisher = Publisher(stack.env["BRIDGE_NOTIFIER_RPC"], timeout=TIMEOUT)
    wait_for_notifier(stack, publisher)
    client = handshake(stack, channels=["jobs"])
    for n in range(5):
        assert publisher.job_progress("before", n * 10, n=n) is True
    assert publisher.flush() is True and publisher.unconfirmed == 0
    collect(stack, client, lambda got: len(got) >= 5)

    stack.kill("notifier")
    result, first = timed(lambda: publisher.job_progress("while-down", 1))
    assert result is False and first <= TIMEOUT + SLACK
    for _ in range(20):  # the notifier is known to be away: every further call fails at once
        result, later = timed(lambda: publisher.job_progress("while-down", 2))
        assert result is False and later < 0.1
    strict = Publisher(stack.env["BRIDGE_NOTIFIER_RPC"], timeout=TIMEOUT, raise_on_drop=True)
    with pytest.raises(NotifierUnavailable):
        strict.job_progress("while-down", 3)
    strict.close(linger=0)
    assert publisher.dropped == 21 and publisher.unconfirmed == 0  # refused, not sent: nothing in doubt

    stack.start("notifier")
    wait_for(lambda: publisher.job_progress("after", 100) is True, 20, interval=0.05, message="sends to work again")
    assert publisher.flush() is True
    got = collect(stack, client, has("job_id", "after"))
    assert [m for m in got if m["job_id"] == "while-down"] == []
    assert publisher.unconfirmed == 0
    publisher.close()


def test_events_a_hung_notifier_never_acknowledges_are_counted_and_later_sends_fail_fast(stack):
    publisher = Publisher(stack.env["BRIDGE_NOTIFIER_RPC"], timeout=TIMEOUT)
    wait_for_notifier(stack, publisher)
    client = handshake(stack, channels=["jobs"])
    stack.signal("notifier", signal.SIGSTOP)
    try:
        for n in range(5):  # the connection is up: each send is handed over at once, its acknowledgement awaited
            result, took = timed(lambda: publisher.job_progress("unacknowledged", n))
            assert result is True and took < 0.1
        assert publisher.flush() is False  # waits one timeout, then gives them up
        assert (publisher.unconfirmed, publisher.dropped, publisher.confirmed) == (5, 5, publisher.sent - 5)
        result, took = timed(lambda: publisher.job_progress("unacknowledged", 6))
        assert result is False and took < 0.1 and publisher.dropped == 6
    finally:
        stack.kill("notifier")  # what the hung notifier held dies with it, as counted
    stack.start("notifier")
    wait_for(lambda: publisher.job_progress("after", 100) is True, 20, interval=0.05, message="sends to work again")
    assert publisher.flush() is True
    got = collect(stack, client, has("job_id", "after"))
    assert [m for m in got if m["job_id"] == "unacknowledged"] == []
    publisher.close()


def test_confirm_waits_for_each_acknowledgement(stack):
    publisher = Publisher(stack.env["BRIDGE_NOTIFIER_RPC"], timeout=TIMEOUT, confirm=True)
    wait_for_notifier(stack, publisher)
    assert publisher.job_started("confirmed") is True and publisher.confirmed == publisher.sent
    stack.signal("notifier", signal.SIGSTOP)
    try:
        result, took = timed(lambda: publisher.job_started("not-confirmed"))
        assert result is False and TIMEOUT - 0.05 <= took <= TIMEOUT + SLACK and publisher.unconfirmed == 1
    finally:
        stack.kill("notifier")
    publisher.close(linger=0)


def test_the_acknowledged_example_in_the_docs_works(stack):
    """docs/BACKENDS.md's DEALER example for other languages, run as written."""
    publisher = Publisher(stack.env["BRIDGE_NOTIFIER_RPC"], timeout=2.0)
    wait_for_notifier(stack, publisher)
    publisher.close()
    client = handshake(stack, channels=["jobs"])
    doc = (ROOT / "docs" / "BACKENDS.md").read_text()
    code = re.search(r"\*\*Acknowledged, from any language\*\*.*?```python\n(.*?)```", doc, re.S).group(1)
    scope = {}
    exec(code.replace("tcp://127.0.0.1:5105", stack.env["BRIDGE_NOTIFIER_RPC"]), scope)
    assert scope["answer"] == {"id": 1, "ok": True}
    got = collect(stack, client, has("job_id", "job124"))
    assert got[-1]["progress"] == 60 and got[-1]["channel"] == "jobs"
