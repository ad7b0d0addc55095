"""The backend library against real ZeroMQ sockets on loopback: checks, framing, timeouts."""

import threading
import time

import pytest
import zmq

from services import protocol
from services.notifier.client import Listener, MessageError, NotifierUnavailable, Publisher
from services.notifier.config import NotifierConfig
from services.notifier.server import NotifierServer
from tests.stack import free_port


class RunningNotifier:
    """A real ``NotifierServer`` looping in a thread, and a SUB where a hub would listen."""

    def __init__(self, rpc_port=None):
        self.ctx = zmq.Context()
        self.config = NotifierConfig(
            events_in=f"tcp://127.0.0.1:{free_port()}", events_out=f"tcp://127.0.0.1:{free_port()}",
            rpc_endpoint=f"tcp://127.0.0.1:{rpc_port or free_port()}", status_interval=0)
        self.server = NotifierServer(self.config, context=self.ctx, sampler=False)
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.SUBSCRIBE, protocol.TOPIC_PUBLISH)
        self.sub.connect(self.config.events_out)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        self.events = []

    @property
    def endpoint(self):
        return self.config.rpc_endpoint

    def received(self, timeout=5.0):
        """The next published event (a map), in order."""
        deadline = time.monotonic() + timeout
        while not self.events:
            left = deadline - time.monotonic()
            assert left > 0 and self.sub.poll(int(left * 1000)), "nothing arrived"
            topic, events, position = protocol.decode_stream(self.sub.recv_multipart())
            assert position is not None and position[0] == self.server.log.epoch
            self.events.extend(events)
        return self.events.pop(0)

    def stop(self):
        self.server.stop()
        self.thread.join(10)
        self.sub.close()
        self.ctx.term()


@pytest.fixture
def notifier():
    running = RunningNotifier()
    yield running
    running.stop()


@pytest.fixture
def pull(notifier):
    """A real notifier; yields (it, its request endpoint) for the tests below."""
    return notifier, notifier.endpoint


def received(notifier, timeout=5.0):
    return notifier.received(timeout)


def wait_subscribed(notifier, timeout=5.0):
    """Until the SUB's subscription reached the notifier (before it, events are held, not lost, but not seen)."""
    deadline = time.monotonic() + timeout
    while not notifier.server.subscribed:
        assert time.monotonic() < deadline, "the SUB never subscribed"
        time.sleep(0.01)


def test_events_are_framed_as_documented(pull):
    sock, endpoint = pull
    with Publisher(endpoint, timeout=2) as ws:
        wait_subscribed(sock)
        assert ws.job_progress("j1", 42.5, stage="export", message="half", batch=3) is True
        assert ws.send_to_client("abc", {"type": "notification", "message": "hi"})
        assert ws.send_to_client_type("lightroom", {"type": "reload_config"})
        assert ws.broadcast({"type": "news"})
        assert ws.send_websocket_notification("photo_analyzed", {"photo_id": "p1", "analysis": []})
        assert ws.sent == 5
        assert ws.flush() is True and ws.confirmed == 5
    assert received(sock) == {"target": "channel", "to": "jobs", "message": {
        "type": "job_progress", "job_id": "j1", "progress": 42.5, "stage": "export", "message": "half", "batch": 3}}
    assert received(sock) == {"target": "client", "to": "abc", "message": {"type": "notification", "message": "hi"}}
    assert received(sock) == {"target": "client_type", "to": "lightroom", "message": {"type": "reload_config"}}
    assert received(sock) == {"target": "all", "message": {"type": "news"}}
    assert received(sock)["message"] == {"type": "photo_analyzed", "photo_id": "p1", "analysis": {}}


def test_job_complete_notification_becomes_completed_or_failed(pull):
    sock, endpoint = pull
    with Publisher(endpoint) as ws:
        wait_subscribed(sock)
        ws.send_websocket_notification("job_complete", {"job_id": "j", "success": False, "error": "boom"})
        ws.job_created("j2", channel="my-jobs")
    event = received(sock)
    assert event["to"] == "jobs" and event["message"]["type"] == "job_failed" and event["message"]["error"] == "boom"
    assert received(sock)["to"] == "my-jobs"


@pytest.mark.parametrize("call", [
    lambda ws: ws.job_progress("j", 101),
    lambda ws: ws.job_progress("j", -0.1),
    lambda ws: ws.job_progress("j", float("nan")),
    lambda ws: ws.job_progress("", 5),
    lambda ws: ws.job_failed("j", ""),
    lambda ws: ws.job_created("j", total=-1),
    lambda ws: ws.resource_warning("cpu", "high", 90),
    lambda ws: ws.broadcast({"no": "type"}),
    lambda ws: ws.broadcast({"type": "x"}, channel="bad channel!"),
    lambda ws: ws.send_to_client("", {"type": "x"}),
    lambda ws: ws.send_websocket_notification("job_progress", {"job_id": "j"}),
    lambda ws: ws.send_websocket_notification("job_progress", {"job_id": "j", "progress": 200}),
    lambda ws: ws.broadcast({"type": "big", "blob": "x" * (protocol.MAX_FRAME_BYTES + 1)}),
])
def test_bad_messages_raise_before_anything_is_sent(pull, call):
    sock, endpoint = pull
    with Publisher(endpoint) as ws:
        with pytest.raises(MessageError):
            call(ws)
        assert ws.sent == 0 and ws.dropped == 0
    assert sock.server.stats["received"] == 0


def test_a_missing_notifier_costs_one_timeout_then_fails_fast():
    ws = Publisher(f"tcp://127.0.0.1:{free_port()}", timeout=0.3)
    started = time.monotonic()
    assert ws.job_started("j") is False
    first = time.monotonic() - started
    started = time.monotonic()
    assert ws.job_started("j") is False
    second = time.monotonic() - started
    ws.close()
    assert 0.25 <= first < 1.0 and second < 0.1
    assert ws.dropped == 2 and ws.sent == 0


def test_raise_on_drop_raises_a_clear_error():
    ws = Publisher(f"tcp://127.0.0.1:{free_port()}", timeout=0.1, raise_on_drop=True)
    with pytest.raises(NotifierUnavailable, match="did not take the event"):
        ws.broadcast({"type": "x"})
    ws.close()


def test_sending_resumes_when_the_notifier_comes_back():
    port = free_port()
    ws = Publisher(f"tcp://127.0.0.1:{port}", timeout=0.2)
    assert ws.broadcast({"type": "lost"}) is False
    running = RunningNotifier(rpc_port=port)
    try:
        wait_subscribed(running)
        deadline = time.monotonic() + 10
        while not ws.broadcast({"type": "back"}):
            assert time.monotonic() < deadline, "never reconnected"
            time.sleep(0.02)
        assert received(running)["message"] == {"type": "back"}
        assert ws.flush() is True
    finally:
        ws.close()
        running.stop()


def test_a_closed_publisher_refuses():
    ws = Publisher(f"tcp://127.0.0.1:{free_port()}", timeout=0.1)
    ws.close()
    with pytest.raises(NotifierUnavailable):
        ws.broadcast({"type": "x"})


def test_publisher_is_safe_across_threads(pull):
    sock, endpoint = pull
    with Publisher(endpoint) as ws:
        wait_subscribed(sock)
        threads = [threading.Thread(target=lambda n=n: [ws.job_progress(f"t{n}", i) for i in range(50)]) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    assert ws.sent == 200 and ws.confirmed == 200
    assert len([received(sock) for _ in range(200)]) == 200


def test_listener_decodes_client_events_and_filters_types():
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    listener = Listener(types=["job_progress"], endpoint=f"tcp://127.0.0.1:{port}")
    event = {"client_id": "c1", "client_type": "lightroom", "client_name": "LR", "timestamp": "t",
             "message": {"type": "job_progress", "job_id": "j", "progress": 5}}
    other = dict(event, message={"type": "job_progress_extra"})
    try:
        heard = None
        deadline = time.monotonic() + 10
        while heard is None:  # resend until the subscription has reached the PUB
            assert time.monotonic() < deadline
            pub.send_multipart(protocol.encode_event(b"client.job_progress_extra", other))
            pub.send_multipart([b"client.job_progress", b"WRONG", b"x"])
            pub.send_multipart(protocol.encode_event(b"client.job_progress", event))
            heard = listener.receive(timeout=0.05)
        assert heard.type == "job_progress" and heard.client_id == "c1" and heard.message["progress"] == 5
        assert (heard.client_type, heard.client_name, heard.timestamp) == ("lightroom", "LR", "t")
        with pytest.raises(ValueError):
            listener.on("error", print)
    finally:
        listener.close()
        pub.close()
        ctx.term()
    assert listener.receive(timeout=0.1) is None  # closed: returns at once
