"""Reading HTTP input strictly: JSON bodies with a size limit, typed query parameters.

Every failure raises ``InputError`` with the status and a message naming the
field; the error handlers turn it into the seed's ``{"success": false, "error"}``.
"""

import orjson

from services.messages import MessageError, check_message


class InputError(Exception):
    """The request is malformed: answered with ``status`` and ``message``."""

    def __init__(self, status, message, field=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


async def read_object(req, max_body):
    """The request body as a JSON object (``[]`` and an empty body count as ``{}``)."""
    length = req.content_length
    if length is not None and length > max_body:
        raise InputError(413, f"request body is larger than {max_body} bytes")
    data = await req.stream.read(max_body + 1)
    if len(data) > max_body:
        raise InputError(413, f"request body is larger than {max_body} bytes")
    if not data.strip():
        return {}
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise InputError(400, "request body is not valid JSON") from None
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


def optional_number(body, name, minimum=0.0):
    """An optional number field at or above ``minimum``."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < minimum:
        raise InputError(400, f"field '{name}' must be a number of at least {minimum:g}", name)
    return float(value)


def message_field(body, name="message"):
    """A message object with a valid ``type`` (``InputError`` names what is wrong)."""
    message = body.get(name)
    if message is None:
        raise InputError(400, f"missing field '{name}'", name)
    try:
        return check_message(message)
    except MessageError as ex:
        field = name if ex.field == "message" else f"{name}.{ex.field}"
        raise InputError(400, f"field '{field}' {ex.reason}", field) from None


def query_str(req, name, required=True, limit=200):
    """A query parameter as a string."""
    value = req.get_param(name)
    if value is None or value == "":
        if required:
            raise InputError(400, f"missing query parameter '{name}'", name)
        return None
    if len(value) > limit:
        raise InputError(400, f"query parameter '{name}' is longer than {limit} characters", name)
    return value


def query_number(req, name, minimum=0.0, integer=False):
    """An optional numeric query parameter at or above ``minimum``."""
    raw = req.get_param(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise InputError(400, f"query parameter '{name}' must be {kind}", name) from None
    if value != value or value < minimum or value in (float("inf"),):
        raise InputError(400, f"query parameter '{name}' must be at least {minimum:g}", name)
    return value
