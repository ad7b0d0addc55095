"""Batched requests and replies: one msgpack array of the same maps (docs/PROTOCOL.md)."""

import msgpack
import pytest
from hypothesis import given, strategies as st

from services import protocol
from services.protocol import ProtocolError


_INT = st.integers(min_value=-2**63, max_value=2**64 - 1)


@given(st.lists(st.dictionaries(st.text(max_size=8), _INT | st.text(max_size=20), max_size=4), max_size=40))
def test_pack_batch_is_the_array_msgpack_would_make(items):
    packed = [msgpack.packb(item, use_bin_type=True) for item in items]
    assert protocol.pack_batch(packed) == msgpack.packb(items, use_bin_type=True)


@pytest.mark.parametrize("n", [0, 1, 15, 16, 65535, 65536])
def test_pack_batch_headers_at_each_size_boundary(n):
    packed = [msgpack.packb({"i": 1})] * n
    assert msgpack.unpackb(protocol.pack_batch(packed)) == [{"i": 1}] * n


@given(st.lists(st.binary(max_size=50), max_size=40), st.integers(min_value=1, max_value=120))
def test_batches_keep_order_and_stay_under_the_limit_unless_one_item_is_larger(items, limit):
    runs = list(protocol.batches(items, limit))
    assert [x for run in runs for x in run] == items
    for run in runs:
        assert run and (sum(map(len, run)) <= limit or len(run) == 1)


def test_a_map_is_one_request_and_an_array_a_batch():
    single = protocol.encode_request(protocol.OP_STATUS, 1)
    assert protocol.decode_requests(single) == ([{"op": "status", "id": 1}], False)
    batch = [protocol.TAG, protocol.pack_batch([protocol.encode_request(protocol.OP_STATUS, i)[1] for i in (2, 3)])]
    items, is_batch = protocol.decode_requests(batch)
    assert is_batch and [protocol.check_request(x)["id"] for x in items] == [2, 3]


@pytest.mark.parametrize("payload, why", [
    ([], "1 to"),
    ([{"op": "status", "id": 1}] * (protocol.MAX_BATCH + 1), "1 to"),
    ([{"op": "status", "id": 1}, "status"], "array of msgpack maps"),
    ("status", "map or an array"),
])
def test_bad_batches_are_refused_whole(payload, why):
    with pytest.raises(ProtocolError) as err:
        protocol.decode_requests([protocol.TAG, msgpack.packb(payload)])
    assert err.value.code == "bad_protocol" and why in err.value.reason


def test_a_bad_item_is_refused_alone_with_its_id():
    items, _ = protocol.decode_requests([protocol.TAG, msgpack.packb([{"op": "status", "id": 1}, {"op": "nope", "id": 2}])])
    assert protocol.check_request(items[0])["id"] == 1
    with pytest.raises(ProtocolError) as err:
        protocol.check_request(items[1])
    assert (err.value.code, err.value.req_id) == ("unknown_op", 2)


def test_replies_decode_from_a_map_or_a_batch():
    one = protocol.encode_reply(1, x=1)
    assert [r["id"] for r in protocol.decode_replies(one)] == [1]
    batch = [protocol.TAG, protocol.pack_batch([protocol.encode_reply(2)[1], protocol.encode_error(3, "made_up", "x")[1]])]
    replies = protocol.decode_replies(batch)
    assert [(r["id"], r["ok"]) for r in replies] == [(2, True), (3, False)]
    assert replies[1]["code"] == "internal"
    with pytest.raises(ProtocolError):
        protocol.decode_replies([protocol.TAG, msgpack.packb([{"id": 1, "ok": True}, {"id": "x"}])])
