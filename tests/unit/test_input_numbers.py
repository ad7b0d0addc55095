"""The numbers rule by plain calls: JSON integers past 64 bits are found by field, never read as floats."""

import pytest

from services.gateway.inputs import InputError, int_text, number, parse_json
from services.messages import INT_MAX, INT_MIN, MessageError, check_message


@pytest.mark.parametrize("text,field", [
    ('{"a": 99999999999999999999999}', "a"),
    ('{"a": 18446744073709551616}', "a"),
    ('{"a": -9223372036854775809}', "a"),
    ('{"m": {"list": [1, {"x": 1' + "0" * 30 + '}]}}', "m.list[1].x"),
    ('{"a": 1' + "0" * 5000 + '0}', None),  # orjson refuses it outright: not valid JSON, still a 400
])
def test_wide_integers_are_refused_by_their_field(text, field):
    for data in (text, text.encode()):
        with pytest.raises(InputError) as refused:
            parse_json(data)
        assert refused.value.status == 400 and refused.value.field == field


def test_the_64_bit_range_is_kept_exact_and_long_digits_elsewhere_change_nothing():
    data = f'{{"max": {INT_MAX}, "min": {INT_MIN}, "s": "12345678901234567890123", "f": 1.2345678901234567890e5}}'
    value = parse_json(data)
    assert value == {"max": INT_MAX, "min": INT_MIN, "s": "12345678901234567890123", "f": 123456.7890123456789}
    assert type(value["max"]) is int


@pytest.mark.parametrize("raw", ["18446744073709551616", "-1", "1e3", "1_0", "\u0663", "0x10", "", "+1"])
def test_integer_text_is_ascii_decimal_within_range(raw):
    with pytest.raises(InputError):
        int_text(raw, "ack")


def test_integer_text_accepts_the_range():
    assert int_text("0", "ack") == 0 and int_text(str(INT_MAX), "ack") == INT_MAX
    assert int_text(str(INT_MIN), "n", INT_MIN) == INT_MIN


@pytest.mark.parametrize("value", [float("inf"), float("nan"), -1, True, "5", 2.0 ** 64])
def test_other_numbers_are_finite_and_bounded(value):
    with pytest.raises(InputError):
        number(value, "wait")


def test_a_message_built_in_python_is_held_to_the_same_range():
    check_message({"type": "x", "n": INT_MAX, "m": INT_MIN, "big": 1e300})
    for bad, field in (({"type": "x", "n": INT_MAX + 1}, "n"), ({"type": "x", "a": [[0, INT_MIN - 1]]}, "a[0][1]")):
        with pytest.raises(MessageError) as refused:
            check_message(bad)
        assert refused.value.field == field
