"""Reading HTTP input strictly: JSON bodies with a size limit, typed query parameters.

Every failure raises ``InputError`` with the status and a message naming the
field; the error handlers turn it into the seed's ``{"success": false, "error"}``.

Numbers follow one rule wherever they come from (query, header, JSON body,
message, WebSocket frame): an integer must fit in 64 bits (``INT_MIN`` to
``INT_MAX``, what msgpack carries to the hub), a counter such as ``ack``,
``seq`` or ``Last-Event-ID`` is also at least 0, and any other number is
finite and at most ``NUMBER_MAX``. Outside that the request is refused with
400 naming the field: nothing is rounded, wrapped or turned into a float
(docs/PROTOCOL.md, "Numbers").
"""

import asyncio
import json
import math
import re

import orjson

from services.gateway.stream import within
from services.messages import INT_MAX, INT_MIN, INT_RANGE, MessageError, check_message, wide_int_path

NUMBER_MAX = float(1 << 63)  # any other number (wait, timeout_minutes…): finite, and no larger than this

# An integer literal of 19 digits or more may lie outside 64 bits, and orjson would read it as a float
# (99999999999999999999999 -> 1e+23) where the exact value can no longer be seen.
_LONG_DIGITS = re.compile(rb"[0-9]{19}")
_LONG_DIGITS_TEXT = re.compile(r"[0-9]{19}")
_INTEGER_TEXT = re.compile(r"^-?[0-9]{1,20}$")


class _Wide:
    """An integer literal too long to be worth converting: outside 64 bits whatever its digits."""


def _exact_int(text):
    return int(text) if len(text) <= 21 else _Wide()


class InputError(Exception):
    """The request is malformed: answered with ``status`` and ``message``."""

    def __init__(self, status, message, field=None, code=None, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.code = code  # a name for the error; the handler derives one from the status when None
        self.headers = headers or {}


def _has_nul(value):
    """True when a NUL character appears in any string (key or value) of a decoded JSON value."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            for key, inner in item.items():
                if "\x00" in key:
                    return True
                stack.append(inner)
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_json(data, where="request body"):
    """``data`` (bytes or text) as JSON, refusing integers outside 64 bits by their field; ``InputError`` else.

    orjson reads it; only when a run of 19 digits appears is it read again,
    with the standard library, which keeps integers exact, to find the field.
    """
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        # Also lone surrogates (\ud800) and nesting past orjson's limit: a clear 400, never a 500.
        raise InputError(400, f"{where} is not valid JSON (or holds a lone surrogate)") from None
    digits = _LONG_DIGITS if isinstance(data, (bytes, bytearray, memoryview)) else _LONG_DIGITS_TEXT
    if digits.search(data) is None:
        return value
    try:
        exact = json.loads(data, parse_int=_exact_int)
    except RecursionError:
        raise InputError(400, f"{where} is nested too deeply") from None
    path = _wide_path(exact)
    if path is not None:
        field = path or None
        name = f"field '{path}'" if path else where
        raise InputError(400, f"{name} must be an integer {INT_RANGE} (a wider one cannot be kept exact)", field)
    return value


def _wide_path(value):
    """``wide_int_path`` that also finds the ``_Wide`` markers ``parse_json`` leaves for overlong literals."""
    stack = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, _Wide):
            return path
        if isinstance(item, dict):
            stack.extend((v, f"{path}.{k}" if path else str(k)) for k, v in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend((v, f"{path}[{i}]") for i, v in reversed(list(enumerate(item))))
    return wide_int_path(value)


def int_value(value, name, minimum=INT_MIN, what="field"):
    """``value`` if it is an integer from ``minimum`` to ``INT_MAX`` (not a bool), else ``InputError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= INT_MAX:
        raise InputError(400, f"{what} '{name}' must be an integer from {minimum} to {INT_MAX}", name)
    return value


def int_text(raw, name, minimum=0, what="query parameter"):
    """An integer written in decimal (``-`` and ASCII digits only) under the rule of ``int_value``."""
    raw = raw.strip()
    if _INTEGER_TEXT.match(raw) is None:
        raise InputError(400, f"{what} '{name}' must be an integer from {minimum} to {INT_MAX}", name)
    return int_value(int(raw), name, minimum, what)


def number(value, name, minimum=0.0, maximum=NUMBER_MAX, what="field"):
    """``value`` as a float if it is a finite number from ``minimum`` to ``maximum``, else ``InputError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not minimum <= value <= maximum:
        raise InputError(400, f"{what} '{name}' must be a number from {minimum:g} to {maximum:g}", name)
    return float(value)


async def read_object(req, max_body, timeout=None):
    """The request body as a JSON object (``[]`` and an empty body count as ``{}``).

    With ``timeout``, the whole body must arrive within that many seconds
    (BRIDGE_HEADER_TIMEOUT), else 408: a client that sends its head and then
    trickles the body must not hold a worker's connection for ever.
    """
    length = req.content_length
    if length is not None and length > max_body:
        raise InputError(413, f"request body is larger than {max_body} bytes")
    try:
        # ``within``, not ``asyncio.wait_for``: wait_for runs the read as a task of its own before Python 3.12,
        # and each task step waits for the event loop's next pass; with 1 000 clients polling a pass writes
        # a round of answers, and every POST took two of them more (docs/PERFORMANCE.md).
        data = await within(req.stream.read(max_body + 1), timeout)
    except asyncio.TimeoutError:
        raise InputError(408, f"the request body did not arrive within {timeout:g} s") from None
    if len(data) > max_body:
        raise InputError(413, f"request body is larger than {max_body} bytes")
    if not data.strip():
        return {}
    body = parse_json(data)
    # JSON can carry NUL only as the escape \u0000: look closer only when that text appears.
    if b"\\u0000" in data and _has_nul(body):
        raise InputError(400, "strings must not contain NUL characters")
    if body == []:
        return {}
    if not isinstance(body, dict):
        raise InputError(400, "request body must be a JSON object")
    return body


def required_str(body, name, limit=200):
    """A required non-empty string field."""
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise InputError(400, f"missing or invalid field '{name}' (a non-empty string)", name)
    if len(value) > limit:
        raise InputError(400, f"field '{name}' is longer than {limit} characters", name)
    return value


def optional_str(body, name, default, limit=200):
    """An optional string field with a default."""
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, str) or not value or len(value) > limit:
        raise InputError(400, f"field '{name}' must be a non-empty string of at most {limit} characters", name)
    return value


def optional_bool(body, name):
    """An optional true/false field (absent: false)."""
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InputError(400, f"field '{name}' must be true or false", name)
    return value


def optional_number(body, name, minimum=0.0):
    """An optional number field at or above ``minimum``."""
    value = body.get(name)
    if value is None:
        return None
    return number(value, name, minimum)


def message_field(body, name="message", max_bytes=None):
    """A message object with a valid ``type`` (``InputError`` names what is wrong), at most ``max_bytes`` as JSON."""
    message = body.get(name)
    if message is None:
        raise InputError(400, f"missing field '{name}'", name)
    try:
        check_message(message)
    except MessageError as ex:
        field = name if ex.field == "message" else f"{name}.{ex.field}"
        raise InputError(400, f"field '{field}' {ex.reason}", field) from None
    if max_bytes is not None and len(orjson.dumps(message)) > max_bytes:
        raise InputError(413, f"field '{name}' is larger than {max_bytes} bytes as JSON", name)
    return message


def query_str(req, name, required=True, limit=200):
    """A query parameter as a string."""
    value = req.get_param(name)
    if value is None or value == "":
        if required:
            raise InputError(400, f"missing query parameter '{name}'", name)
        return None
    if len(value) > limit:
        raise InputError(400, f"query parameter '{name}' is longer than {limit} characters", name)
    if "\x00" in value:
        raise InputError(400, f"query parameter '{name}' must not contain NUL characters", name)
    return value


def query_number(req, name, minimum=0.0, integer=False):
    """An optional numeric query parameter at or above ``minimum`` (an integer under ``int_text``'s rule)."""
    raw = req.get_param(name)
    if raw is None or raw == "":
        return None
    if integer:
        return int_text(raw, name, int(minimum))
    try:
        value = float(raw)
    except ValueError:
        raise InputError(400, f"query parameter '{name}' must be a number", name) from None
    return number(value, name, minimum, what="query parameter")


def client_secret(req, body=None):
    """The ``client_secret`` a client proves its id with: the X-Client-Secret header, or the body/query field.

    ``None`` when none is given and none is required (``auth.ClientSecrets`` says which).
    """
    value = req.get_header("X-Client-Secret")
    if value is None and body is not None:
        value = body.get("client_secret")
    if value is None and body is None:
        value = req.get_param("client_secret")
    return secret_value(value, getattr(req.context, "client_secret_required", False))


def secret_value(value, required):
    """A given ``client_secret`` (checked later by the hub), ``None`` when absent and not ``required``.

    Absent and required is answered as the hub answers an unknown id or a
    wrong secret (404 ``unknown_client``), so the answer tells nothing about the id.
    """
    if value is None or value == "":
        if required:
            raise InputError(404, "unknown client_id", "client_id", "unknown_client")
        return None
    if not isinstance(value, str) or len(value) > 200 or "\x00" in value:
        raise InputError(400, "client_secret must be the string the handshake returned", "client_secret")
    return value
