"""A plain poll's messages as one JSON array (``json`` in the request, ``messages_json`` in the reply): the same
answer as the maps give, each published message encoded once, and maps whenever JSON cannot carry them."""

import orjson

from services import protocol
from services.gateway.resources import poll_body
from services.hub.requests import PollRequest
from services.hub.sessions import Session, json_entry


def _answer(hub, session, json, ack=None):
    return hub.poll(session, PollRequest(b"peer", 1, 0.0, ack, json=json))


def _body(fields):
    return orjson.loads(poll_body({"timestamp": "t", **fields}))


def test_the_json_answer_is_the_answer_the_maps_give(make_hub):
    hub, _, _ = make_hub(queue_size=5)
    first, second = hub.create_session("a"), hub.create_session("a")
    for session in (first, second):
        hub.subscribe(session, ["c"])
    for n in range(8):  # 3 more than the queue holds: the answer tells them in dropped
        hub.publish(protocol.TARGET_CHANNEL, {"type": "e", "n": n, "text": "é\u2028\"", "f": 1.5}, "c")
    maps, text = _answer(hub, first, json=False, ack=0), _answer(hub, second, json=True, ack=0)
    assert "messages" not in text and "messages_json" in text and "messages_json" not in maps
    assert _body(text) == _body(maps)
    assert [m["seq"] for m in _body(text)["messages"]] == [5, 6, 7, 8, 9]  # connection_established was seq 1
    assert _body(text)["dropped"] == 4


def test_a_published_message_is_encoded_once_for_every_recipient(make_hub):
    hub, _, _ = make_hub()
    sessions = [hub.create_session("a") for _ in range(3)]
    for session in sessions:
        hub.subscribe(session, ["c"])
        _answer(hub, session, json=True)  # the welcome message
    hub.publish(protocol.TARGET_CHANNEL, {"type": "e", "n": 1}, "c")
    message = sessions[0].queue[0][1]
    assert message.json is None
    answers = [orjson.loads(_answer(hub, s, json=True)["messages_json"]) for s in sessions]
    assert message.json == orjson.dumps(message)  # kept on the shared message, seq-less
    assert all(a == [dict(message, seq=2)] for a in answers)


def test_json_entry_puts_the_seq_in_and_replaces_a_stray_one():
    assert orjson.loads(json_entry(7, {"type": "e"})) == {"type": "e", "seq": 7}
    assert orjson.loads(json_entry(7, {})) == {"seq": 7}
    assert orjson.loads(json_entry(7, {"type": "e", "seq": 99})) == {"type": "e", "seq": 7}
    assert json_entry(7, {"type": "e", "blob": b"\x00"}) == b""  # bytes have no JSON: the answer uses maps


def test_a_message_json_cannot_carry_goes_as_maps(make_hub):
    hub, _, _ = make_hub()
    session = hub.create_session("a")
    _answer(hub, session, json=True)
    hub.enqueue(session, {"type": "e", "blob": b"\x01\x02"})
    fields = _answer(hub, session, json=True)
    assert "messages_json" not in fields
    assert fields["messages"] == [{"type": "e", "blob": b"\x01\x02", "seq": 2}]


def test_a_message_whose_json_outgrows_the_link_goes_as_maps(make_hub):
    hub, _, _ = make_hub()
    session = hub.create_session("a")
    _answer(hub, session, json=True)
    # Control characters take six bytes each in JSON (\u0001): within the frame limit as msgpack, past it as JSON.
    text = "\x01" * (protocol.MAX_FRAME_BYTES // 5)
    hub.enqueue(session, {"type": "e", "text": text})
    fields = _answer(hub, session, json=True)
    assert "messages_json" not in fields and fields["messages"][0]["text"] == text
    assert len(protocol.encode_reply(1, **fields)[1]) <= protocol.MAX_REPLY_BYTES


def test_the_json_answer_is_cut_at_the_poll_reply_bytes_and_says_more(make_hub):
    hub, _, _ = make_hub(queue_size=100)
    session = hub.create_session("a")
    hub.subscribe(session, ["c"])
    _answer(hub, session, json=True, ack=0)
    for n in range(40):
        hub.publish(protocol.TARGET_CHANNEL, {"type": "e", "n": n, "pad": "x" * 100_000}, "c")
    fields = _answer(hub, session, json=True, ack=1)
    messages = orjson.loads(fields["messages_json"])
    assert fields["more"] is True and 1 <= len(messages) < 40
    assert len(fields["messages_json"]) <= protocol.POLL_REPLY_BYTES


def test_take_without_keep_drains_what_it_renders():
    session = Session("c", "t", 10, 0.0, "now")
    for n in range(4):
        session.enqueue({"type": "e", "n": n})
    taken = []
    out, size = session.take(3, False, taken=taken, render=json_entry)
    assert [orjson.loads(m)["n"] for m in out] == [0, 1, 2] and size == sum(map(len, out))
    assert [seq for seq, _ in taken] == [1, 2, 3]
    assert [seq for seq, _ in session.queue] == [4] and session.acked == 3
