"""One catalogue of every way a request or a session ends, read by every transport and the plug-in.

Each row says, for one ending: its ``code`` (the ``code`` of an error body
or hub error reply), the HTTP status a request gets, the WebSocket close
code, the SSE event that ends a stream, the flag a poll answer carries, and
what the client should do (``action``):

- ``retry``: try again later (after ``Retry-After`` where given), resuming;
- ``rehandshake``: the session is gone: handshake again (without ``client_id``);
- ``stop``: do not repeat it as it is (fix the request, or leave it ended).

``wire`` marks the codes the hub may answer with (``{ok: false, code}``);
the others the gateway alone produces. A ``None`` cell: that ending never
takes that form. docs/PROTOCOL.md's "Endings" table is this catalogue, and a
test holds them equal; ``python -m services.endings`` prints it as JSON, as
the plug-in's classification spec reads it (tests/lua/spec/support/endings.json).
"""

import json
import sys
from dataclasses import asdict, dataclass

RETRY = "retry"
REHANDSHAKE = "rehandshake"
STOP = "stop"
ACTIONS = (RETRY, REHANDSHAKE, STOP)


@dataclass(frozen=True)
class Ending:
    """One row of the catalogue."""

    code: str
    http_status: int = None
    ws_close: int = None
    sse_event: str = None
    poll_flag: str = None
    action: str = STOP
    reason: str = ""  # the WebSocket close reason; a short description otherwise
    wire: bool = False

    @property
    def name(self):
        """The code (the error table's older name for it)."""
        return self.code


CATALOGUE = (
    # errors the hub answers with
    Ending("bad_request", 400, action=STOP, reason="fix the request (the field names what is wrong)", wire=True),
    Ending("bad_protocol", 400, action=STOP, reason="wrong tag or undecodable frame", wire=True),
    Ending("unsupported_version", 400, action=STOP, reason="use a supported protocol version", wire=True),
    Ending("unknown_op", 400, action=STOP, reason="fix the sender", wire=True),
    Ending("unknown_client", 404, 4004, "unknown_client", action=REHANDSHAKE,
           reason="unknown client: handshake again", wire=True),
    Ending("unknown_job", 404, action=STOP, reason="no state for that job", wire=True),
    Ending("not_announced", 409, action=STOP, reason="an LrSocket probe ack without a current announcement",
           wire=True),
    Ending("port_in_use", 409, action=STOP, reason="the bridge holds a connection to that port already", wire=True),
    Ending("too_many_clients", 429, action=RETRY, reason="retry later", wire=True),
    Ending("rate_limited", 429, action=RETRY, reason="retry after Retry-After", wire=True),
    Ending("hub_unavailable", 503, 1013, action=RETRY,
           reason="the bridge hub is unavailable: reconnect and resume", wire=True),
    Ending("internal", 500, action=RETRY, reason="internal error", wire=True),
    # commands (docs/BACKENDS.md): how a call ended when it did not end in a result
    Ending("unknown_command", 404, action=STOP, reason="no such command (never made, or forgotten)", wire=True),
    Ending("too_many_commands", 429, action=RETRY, reason="too many commands pending: retry later", wire=True),
    Ending("command_expired", 504, action=RETRY, reason="never delivered before its deadline: safe to retry",
           wire=True),
    # 4xx: a client must not repeat these as they are (5xx means "retry" to every client of the bridge)
    Ending("command_unknown", 409, action=STOP, reason="delivered, no answer in time: it may have run", wire=True),
    Ending("command_failed", 422, action=STOP, reason="the client ran it and it failed", wire=True),
    Ending("not_supported", 422, action=STOP, reason="the client has no such action", wire=True),
    # errors the gateway answers with by itself
    Ending("unauthorized", 401, reason="a token is required"),
    Ending("forbidden", 403, reason="not allowed for this caller"),
    Ending("not_found", 404, reason="no such resource"),
    Ending("method_not_allowed", 405, reason="no such method on this resource"),
    Ending("request_timeout", 408, action=RETRY, reason="the request body did not arrive in time: send it again"),
    Ending("too_large", 413, reason="the body is too large"),
    Ending("unsupported_media_type", 415, reason="the body must be JSON"),
    Ending("misdirected", 421, reason="the Host is not the gateway's"),
    # a session's stream ends
    Ending("disconnected", None, 1000, action=STOP, reason="disconnected"),
    Ending("superseded", None, 4001, "superseded", "superseded", action=STOP,
           reason="superseded: another reader took over this session"),
    Ending("closed", None, 4000, "closed", "closed", action=REHANDSHAKE, reason="session closed by the bridge"),
    Ending("handshake_timeout", None, 4002, action=STOP, reason="no handshake frame in time"),
    Ending("too_slow", None, 4003, action=RETRY, reason="the client did not read for two ping intervals"),
    # closed by the WebSocket server library itself
    Ending("frame_too_large", None, 1009, action=STOP, reason="frame too large"),
    Ending("ping_timeout", None, 1011, action=RETRY, reason="keepalive ping timeout"),
)

ENDINGS = {e.code: e for e in CATALOGUE}
# The codes a hub may answer with: protocol.ERRORS.
WIRE_ERRORS = {e.code: e for e in CATALOGUE if e.wire}
# HTTP status -> the code of a gateway's own refusal with that status (the first row that has it).
CODE_BY_STATUS = {}
for _e in CATALOGUE:
    if _e.http_status is not None and not _e.wire:
        CODE_BY_STATUS.setdefault(_e.http_status, _e.code)
CODE_BY_STATUS.update({400: "bad_request", 429: "rate_limited"})  # by status alone: a bad request, a rate limit
# Poll flags and SSE events that end a stream -> the row.
BY_POLL_FLAG = {e.poll_flag: e for e in CATALOGUE if e.poll_flag}


def export():
    """The catalogue as plain rows (what ``python -m services.endings`` prints)."""
    return [{k: v for k, v in asdict(e).items() if v is not None} for e in CATALOGUE]


if __name__ == "__main__":
    json.dump(export(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
