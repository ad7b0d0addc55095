"""The wire protocol codec: round trips, strict decoding, typed errors."""

import msgpack
import pytest
from hypothesis import given, strategies as st

from services import protocol
from services.protocol import ProtocolError


def test_request_round_trip():
    frames = protocol.encode_request(protocol.OP_POLL, 7, client_id="c", wait=2.5, ack=3)
    assert frames[0] == protocol.TAG
    req = protocol.decode_request(frames)
    assert req == {"op": "poll", "id": 7, "client_id": "c", "wait": 2.5, "ack": 3}


def test_reply_and_error_round_trip():
    rep = protocol.decode_reply(protocol.encode_reply(3, messages=[{"type": "x"}]))
    assert rep["ok"] is True and rep["id"] == 3 and rep["messages"] == [{"type": "x"}]
    err = protocol.decode_reply(protocol.encode_error(4, "unknown_client", "gone", "client_id"))
    assert (err["ok"], err["code"], err["field"]) == (False, "unknown_client", "client_id")


def test_unknown_error_codes_become_internal():
    assert protocol.decode_reply(protocol.encode_error(1, "made_up", "x"))["code"] == "internal"


def test_wrong_tag_is_rejected_explicitly():
    frames = protocol.encode_request(protocol.OP_STATUS, 1)
    with pytest.raises(ProtocolError) as info:
        protocol.decode_request([b"OTHER/9", frames[1]])
    assert info.value.code == "bad_protocol"


@pytest.mark.parametrize("payload", [b"", b"\xc1", b"\x92\x01\x02", msgpack.packb([1, 2]), b"\xdf\xff\xff\xff\xff"])
def test_garbage_payloads_are_bad_protocol(payload):
    with pytest.raises(ProtocolError) as info:
        protocol.decode_request([protocol.TAG, payload])
    assert info.value.code == "bad_protocol"


def test_unknown_op_carries_the_request_id():
    with pytest.raises(ProtocolError) as info:
        protocol.decode_request([protocol.TAG, msgpack.packb({"op": "explode", "id": 9})])
    assert info.value.code == "unknown_op" and info.value.req_id == 9


@pytest.mark.parametrize("fields,field", [
    ({"wait": 1}, "client_id"),
    ({"client_id": 5}, "client_id"),
    ({"client_id": "c", "ack": "3"}, "ack"),
    ({"client_id": "c", "ack": True}, "ack"),
    ({"client_id": "c", "wait": "long"}, "wait"),
])
def test_field_errors_name_the_field(fields, field):
    with pytest.raises(ProtocolError) as info:
        protocol.decode_request(protocol.encode_request(protocol.OP_POLL, 1, **fields))
    assert info.value.code == "bad_request" and info.value.field == field and info.value.req_id == 1


def test_unknown_fields_are_ignored():
    req = protocol.decode_request(protocol.encode_request(protocol.OP_STATUS, 1, future_field=[1]))
    assert req["op"] == "status"


def test_publish_checks_target_and_recipient():
    ok = protocol.publish_event(protocol.TARGET_CHANNEL, {"type": "x"}, "jobs")
    assert protocol.check_publish(ok) is ok
    with pytest.raises(ProtocolError):
        protocol.check_publish(protocol.publish_event(protocol.TARGET_CHANNEL, {"type": "x"}))
    with pytest.raises(ProtocolError):
        protocol.check_publish(protocol.publish_event("everyone", {"type": "x"}))
    with pytest.raises(ProtocolError):
        protocol.check_publish(protocol.publish_event(protocol.TARGET_CHANNEL, {"type": "x"}, "no spaces"))
    with pytest.raises(ProtocolError):
        protocol.check_publish(protocol.publish_event(protocol.TARGET_ALL, {"kind": "untyped"}))


def test_event_round_trip_keeps_topic_first():
    frames = protocol.encode_event(protocol.TOPIC_PUBLISH, {"target": "all", "message": {"type": "x"}})
    assert frames[0] == protocol.TOPIC_PUBLISH
    topic, event = protocol.decode_event(frames)
    assert topic == protocol.TOPIC_PUBLISH and event["message"] == {"type": "x"}


@pytest.mark.parametrize("version,major", [("1.0", 1), ("1", 1), ("2.3", 2)])
def test_client_major(version, major):
    assert protocol.client_major(version) == major


@pytest.mark.parametrize("version", ["", "v1", "1.0.0.0", "1.x", None])
def test_client_major_rejects_malformed(version):
    with pytest.raises(ProtocolError):
        protocol.client_major(version)


@given(st.binary(max_size=200))
def test_decoding_random_bytes_never_raises_anything_but_protocol_error(data):
    for frames in ([protocol.TAG, data], [data, data], [data]):
        try:
            protocol.decode_request(frames)
        except ProtocolError:
            pass


@given(st.text(max_size=80))
def test_type_and_channel_validators_are_total(text):
    assert protocol.valid_type(text) in (True, False)
    assert protocol.valid_channel(text) in (True, False)
