"""Application messages: the seed's types, their fields, checks and default channels.

Used by the gateway's ``/ws/notify/*`` routes and by the backend library, so
a ``job_progress`` is the same message whichever way it enters the bridge.
Each builder returns a plain dict with ``type``; a bad field raises
``MessageError`` naming it (progress outside 0-100 is an error, not a message).
"""

import math

from services import protocol

# Which channel each application type goes to unless the publisher says otherwise.
DEFAULT_CHANNELS = {
    "job_created": "jobs",
    "job_started": "jobs",
    "job_progress": "jobs",
    "job_completed": "jobs",
    "job_failed": "jobs",
    "photo_imported": "photos",
    "photo_analyzed": "photos",
    "session_created": "sessions",
    "system_status": "system",
    "resource_warning": "system",
}

MAX_DEPTH = 32  # nesting of objects and lists inside one message

# The integers a message may hold: what msgpack carries between the bridge's processes (docs/PROTOCOL.md).
# A wider one is refused, naming its field, never rounded or wrapped.
INT_MIN = -(1 << 63)
INT_MAX = (1 << 64) - 1
INT_RANGE = f"from {INT_MIN} to {INT_MAX}"


class MessageError(ValueError):
    """A message field is missing or wrong; ``field`` names it."""

    def __init__(self, field, reason):
        super().__init__(f"field '{field}' {reason}")
        self.field = field
        self.reason = reason


def _require_id(fields, name):
    value = fields.get(name)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise MessageError(name, "is required (a non-empty string or integer)")
    if isinstance(value, str) and len(value) > 200:
        raise MessageError(name, "must be at most 200 characters")
    return value


def _optional_str(fields, name, limit=10000):
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise MessageError(name, f"must be a string of at most {limit} characters")
    return value


def _optional_object(fields, name):
    value = fields.get(name)
    if value is None:
        return None
    if value == []:  # Lua's empty table arrives as [] in JSON
        return {}
    if not isinstance(value, dict):
        raise MessageError(name, "must be an object")
    return value


def _progress(fields):
    value = fields.get("progress")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise MessageError("progress", "is required (a number from 0 to 100)")
    if not 0 <= value <= 100:
        raise MessageError("progress", "must be between 0 and 100")
    return value


def _build(message_type, fields, extra):
    """The message: the caller's extra fields, then the checked ones on top."""
    message = {k: v for k, v in extra.items() if v is not None and k not in ("type", "seq")}
    message.update({k: v for k, v in fields.items() if v is not None})
    message["type"] = message_type
    check_depth(message)
    return message


def job_created(job_id, job_type=None, name=None, total=None, **extra):
    """A new job exists (``total``: how many items it will process, if known)."""
    f = {"job_id": job_id, "job_type": job_type, "name": name, "total": total}
    _require_id(f, "job_id")
    _optional_str(f, "job_type", 100)
    _optional_str(f, "name", 1000)
    if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
        raise MessageError("total", "must be a non-negative integer")
    return _build("job_created", f, extra)


def job_started(job_id, stage=None, **extra):
    """A job began processing."""
    f = {"job_id": job_id, "stage": stage}
    _require_id(f, "job_id")
    _optional_str(f, "stage", 200)
    return _build("job_started", f, extra)


def job_progress(job_id, progress, stage=None, message=None, **extra):
    """How far a job is: ``progress`` in percent (0-100), ``stage`` and a human ``message``."""
    f = {"job_id": job_id, "progress": progress, "stage": stage, "message": message}
    _require_id(f, "job_id")
    _progress(f)
    _optional_str(f, "stage", 200)
    _optional_str(f, "message")
    return _build("job_progress", f, extra)


def job_completed(job_id, result=None, **extra):
    """A job finished successfully; ``result`` is an object."""
    f = {"job_id": job_id, "result": result}
    _require_id(f, "job_id")
    f["result"] = _optional_object(f, "result") or {}
    return _build("job_completed", f, extra)


def job_failed(job_id, error, **extra):
    """A job failed; ``error`` says why (a string, or an object with details)."""
    f = {"job_id": job_id, "error": error}
    _require_id(f, "job_id")
    if not isinstance(error, (str, dict)) or error in ("", {}):
        raise MessageError("error", "is required (a string or an object)")
    return _build("job_failed", f, extra)


def job_complete(job_id, success, result=None, error=None, **extra):
    """The seed's ``job_complete`` notification: ``job_completed`` or ``job_failed`` by ``success``."""
    if not isinstance(success, bool):
        raise MessageError("success", "is required (true or false)")
    if success:
        return job_completed(job_id, result=result, **extra)
    return job_failed(job_id, error if error not in (None, "", {}) else "job failed", result=result, **extra)


def photo_imported(photo_id, path=None, job_id=None, **extra):
    """A photo entered the database."""
    f = {"photo_id": photo_id, "path": path, "job_id": job_id}
    _require_id(f, "photo_id")
    _optional_str(f, "path", 4096)
    return _build("photo_imported", f, extra)


def photo_analyzed(photo_id, analysis=None, job_id=None, **extra):
    """A photo's analysis finished; ``analysis`` is an object of results."""
    f = {"photo_id": photo_id, "analysis": analysis, "job_id": job_id}
    _require_id(f, "photo_id")
    f["analysis"] = _optional_object(f, "analysis")
    return _build("photo_analyzed", f, extra)


def session_created(session_id, name=None, **extra):
    """A new (editing or import) session was created."""
    f = {"session_id": session_id, "name": name}
    _require_id(f, "session_id")
    _optional_str(f, "name", 1000)
    return _build("session_created", f, extra)


def system_status(status, **extra):
    """A sample of the machine's state (cpu_usage, memory, disk, gpu…) under ``status``."""
    f = {"status": status}
    f["status"] = _optional_object(f, "status")
    if f["status"] is None:
        raise MessageError("status", "is required (an object)")
    return _build("system_status", f, extra)


def resource_warning(resource, value, threshold, level="warning", message=None, **extra):
    """A resource crossed its threshold (``level`` is warning or critical, or ok when it recovers)."""
    f = {"resource": resource, "value": value, "threshold": threshold, "level": level, "message": message}
    if not isinstance(resource, str) or not resource:
        raise MessageError("resource", "is required (a string)")
    for name in ("value", "threshold"):
        if isinstance(f[name], bool) or not isinstance(f[name], (int, float)):
            raise MessageError(name, "is required (a number)")
    if level not in ("ok", "warning", "critical"):
        raise MessageError("level", "must be ok, warning or critical")
    _optional_str(f, "message")
    return _build("resource_warning", f, extra)


BUILDERS = {
    "job_created": job_created,
    "job_started": job_started,
    "job_progress": job_progress,
    "job_completed": job_completed,
    "job_failed": job_failed,
    "photo_imported": photo_imported,
    "photo_analyzed": photo_analyzed,
    "session_created": session_created,
    "system_status": system_status,
    "resource_warning": resource_warning,
}


def check_message(message):
    """Check any message (application or custom): an object with a valid ``type``, bounded depth."""
    if not isinstance(message, dict):
        raise MessageError("message", "must be an object")
    if not protocol.valid_type(message.get("type")):
        raise MessageError("type", "must be a short identifier (letter first, at most 64 of A-Z a-z 0-9 _ . : -)")
    check_depth(message)
    return message


def check_depth(value, limit=MAX_DEPTH):
    """Reject values nested deeper than ``limit`` (they could not be encoded safely), or holding an
    integer outside ``INT_MIN``..``INT_MAX`` (msgpack has no wider one: ``MessageError`` names its field)."""
    stack = [(value, 1)]  # only objects and lists go on it: a flat message costs one pass
    wide = False
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            children = ()
        if depth > limit or (children and depth >= limit):  # it, or a child of it, sits deeper than limit
            raise MessageError("message", f"is nested deeper than {limit} levels")
        for v in children:
            if isinstance(v, (dict, list)):
                stack.append((v, depth + 1))
            elif type(v) is int and not INT_MIN <= v <= INT_MAX:
                wide = True
    if type(value) is int and not INT_MIN <= value <= INT_MAX:
        wide = True
    if wide:
        raise MessageError(wide_int_path(value) or "message", f"must be an integer {INT_RANGE}")


def wide_int_path(value):
    """Where the first integer outside ``INT_MIN``..``INT_MAX`` sits in ``value``: ``"a.b[2]"``, ``""`` for
    ``value`` itself, ``None`` when there is none. (The slow path: only called once one is known to be there.)"""
    stack = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, dict):
            stack.extend((v, f"{path}.{k}" if path else str(k)) for k, v in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend((v, f"{path}[{i}]") for i, v in reversed(list(enumerate(item))))
        elif type(item) is int and not INT_MIN <= item <= INT_MAX:
            return path
    return None
