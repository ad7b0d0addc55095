"""Reading HTTP input strictly: JSON bodies with a size limit, typed query parameters.

Every failure raises ``InputError`` with the status and a message naming the
field; the error handlers turn it into the seed's ``{"success": false, "error"}``.
"""

import orjson

from services.messages import MessageError, check_message


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
        # Also lone surrogates (\ud800) and nesting past orjson's limit: a clear 400, never a 500.
        raise InputError(400, "request body is not valid JSON (or holds a lone surrogate)") from None
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
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < minimum:
        raise InputError(400, f"field '{name}' must be a number of at least {minimum:g}", name)
    return float(value)


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


def client_secret(req, body=None):
    """The ``client_secret`` a client proves its id with: the X-Client-Secret header, or the body/query field."""
    value = req.get_header("X-Client-Secret")
    if value is None and body is not None:
        value = body.get("client_secret")
    if value is None and body is None:
        value = req.get_param("client_secret")
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 200 or "\x00" in value:
        raise InputError(400, "client_secret must be the string the handshake returned", "client_secret")
    return value
