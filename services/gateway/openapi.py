"""The OpenAPI 3 description of the whole HTTP API, served at ``/ws/openapi.json``.

tests/system/test_security_openapi.py checks that every route of the app has
a path here (and the reverse) and fuzzes the real gateway against it, so an
answer the spec does not describe fails the suite.
"""

import falcon
import orjson

from services.messages import INT_MAX

IDENT = "^[A-Za-z][A-Za-z0-9_.:-]{0,63}$"
CHANNEL = "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema):
    return {"application/json": {"schema": schema}}


def _ok(properties, required=()):
    return {
        "type": "object",
        "required": ["success", *required],
        "properties": {"success": {"type": "boolean", "enum": [True]}, **properties},
    }


def _success(description, properties, required=()):
    return {"description": description, "content": _json(_ok(properties, required))}


def _body(schema, required=True):
    return {"required": required, "content": _json(schema)}


# Answers any route may give besides its success (each with the error shape).
_ERRORS_ANY = ["400", "403", "404", "413", "421", "503"]
_ERRORS_POST = ["415"]
_RATE = ["429"]
_OPERATOR = ["401"]


def _errors(*groups):
    codes = list(_ERRORS_ANY)
    for group in groups:
        codes += group
    return {code: {"$ref": f"#/components/responses/E{code}"} for code in sorted(set(codes))}


def _op(summary, tag, success, body=None, params=(), extra=(), operator=False):
    groups = list(extra)
    if body is not None:
        groups.append(_ERRORS_POST)
    if operator:
        groups.append(_OPERATOR)
    op = {"summary": summary, "tags": [tag], "responses": {"200": success, **_errors(*groups)}}
    if body is not None:
        op["requestBody"] = body
    if params:
        op["parameters"] = list(params)
    if operator:
        op["security"] = [{}, {"bearer": []}]
    return op


def _query(name, schema, required=False, description=""):
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def _path_param(name, schema):
    return {"name": name, "in": "path", "required": True, "schema": schema}


_SECRET_HEADER = {
    "name": "X-Client-Secret", "in": "header", "required": False, "schema": {"type": "string", "maxLength": 200},
    "description": "the client_secret from the handshake (or the client_secret field/parameter)",
}

_MESSAGE_BODY = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": _ref("Message")},
}

_DELIVERED = _success("queued for this many clients", {"delivered": {"type": "integer", "minimum": 0}}, ["delivered"])

PATHS = {
    "/ws/handshake": {"post": _op(
        "Start a session: a client id and its secret; connection_established waits in its queue", "client",
        _success("the new client", {
            "client_id": {"type": "string", "format": "uuid"},
            "client_secret": {"type": "string"},
            "resumed": {"type": "boolean"},
            "protocol_version": {"type": "string"},
            "server_time": {"type": "string"},
        }, ["client_id", "client_secret", "protocol_version", "server_time"]),
        body=_body({"type": "object", "properties": {
            "client_type": {"type": "string", "pattern": IDENT},
            "protocol_version": {"type": "string", "maxLength": 16},
            # docs/DURABILITY.md: both given and right resume that session (its queue too)
            "client_id": {"type": "string", "minLength": 1, "maxLength": 200},
            "client_secret": {"type": "string", "minLength": 1, "maxLength": 200},
            # docs/TRANSPORTS.md: removed when its WebSocket/SSE stream ends (a dashboard tab)
            "ephemeral": {"type": "boolean"},
        }}, required=False),
        extra=[_RATE],
    )},
    "/ws/poll": {"get": _op(
        "Queued messages, long-polling up to `wait` seconds; `ack` confirms seqs up to it", "client",
        _success("messages (possibly none)", {
            "messages": {"type": "array", "items": _ref("Delivered")},
            "dropped": {"type": "integer", "minimum": 0},
            "timestamp": {"type": "string"},
            "more": {"type": "boolean"},
            "superseded": {"type": "boolean"},
            "closed": {"type": "boolean"},
        }, ["messages", "dropped", "timestamp"]),
        params=[
            _query("client_id", {"type": "string", "minLength": 1, "maxLength": 200}, required=True),
            _query("wait", {"type": "number", "minimum": 0, "maximum": 25}, description="seconds; capped at 25"),
            _query("ack", {"type": "integer", "minimum": 0, "maximum": INT_MAX}, description="the last seq processed"),
            _query("client_secret", {"type": "string", "maxLength": 200}),
            _SECRET_HEADER,
        ],
    )},
    "/ws/send": {"post": _op(
        "A message from a client: ping, register, subscribe, unsubscribe, or any application type", "client",
        _success("the hub's answer", {"response": {"type": "object"}}, ["response"]),
        body=_body({"type": "object", "required": ["client_id", "message"], "properties": {
            "client_id": {"type": "string", "minLength": 1, "maxLength": 200},
            "client_secret": {"type": "string", "maxLength": 200},
            "message": _ref("Message"),
        }}),
        params=[_SECRET_HEADER],
        extra=[_RATE],
    )},
    "/ws/disconnect": {"post": _op(
        "Forget the client; its parked poll is answered at once", "client",
        _success("gone", {"message": {"type": "string"}}),
        body=_body({"type": "object", "required": ["client_id"], "properties": {
            "client_id": {"type": "string", "minLength": 1, "maxLength": 200},
            "client_secret": {"type": "string", "maxLength": 200},
        }}),
        params=[_SECRET_HEADER],
    )},
    "/ws/clients": {"get": _op(
        "Every connected client", "operator",
        _success("the clients", {"clients": {"type": "array", "items": {"type": "object"}},
                                 "count": {"type": "integer"}}, ["clients", "count"]),
        operator=True,
    )},
    "/ws/status": {"get": _op(
        "The bridge's summary", "operator",
        _success("the summary", {"status": {"type": "object"}}, ["status"]),
        operator=True,
    )},
    "/ws/broadcast": {"post": _op(
        "To every client, or to one channel's subscribers", "operator", _DELIVERED,
        body=_body({"type": "object", "required": ["message"], "properties": {
            "message": _ref("Message"),
            "channel": {"type": "string", "pattern": CHANNEL},
        }}),
        operator=True,
    )},
    "/ws/send/{client_id}": {"post": _op(
        "To one client (404 when unknown)", "operator", _DELIVERED,
        body=_body(_MESSAGE_BODY),
        params=[_path_param("client_id", {"type": "string", "minLength": 1, "maxLength": 200})],
        operator=True,
    )},
    "/ws/send_to_type/{client_type}": {"post": _op(
        "To every client of one client_type", "operator", _DELIVERED,
        body=_body(_MESSAGE_BODY),
        params=[_path_param("client_type", {"type": "string", "pattern": IDENT})],
        operator=True,
    )},
    "/ws/notify/{kind}": {"post": _op(
        "The seed's notification helpers (job_progress, job_complete, system_status) to their channel",
        "operator",
        _success("queued", {"delivered": {"type": "integer"}, "type": {"type": "string"},
                            "channel": {"type": "string"}}, ["delivered", "type", "channel"]),
        body=_body({"type": "object"}),
        params=[_path_param("kind", {"type": "string", "enum": ["job_progress", "job_complete", "system_status"]})],
        operator=True,
    )},
    "/ws/cleanup": {"post": _op(
        "Remove clients idle longer than timeout_minutes (default: the stale timeout)", "operator",
        _success("removed", {"removed": {"type": "integer"}, "removed_count": {"type": "integer"},
                             "removed_clients": {"type": "array", "items": {"type": "string"}}},
                 ["removed", "removed_count", "removed_clients"]),
        body=_body({"type": "object", "properties": {"timeout_minutes": {"type": "number", "minimum": 0}}},
                   required=False),
        operator=True,
    )},
    "/ws/jobs": {"get": _op(
        "The latest state of every job, and the newest system status (docs/DURABILITY.md)", "operator",
        _success("the jobs", {"jobs": {"type": "array", "items": {"type": "object"}},
                              "count": {"type": "integer"},
                              "system_status": {"type": "object", "nullable": True}}, ["jobs", "count"]),
        operator=True,
    )},
    "/ws/jobs/{job_id}": {"get": _op(
        "One job's latest state (404, code unknown_job, when unknown)", "operator",
        _success("the job", {"job": {"type": "object"}}, ["job"]),
        params=[_path_param("job_id", {"type": "string", "minLength": 1, "maxLength": 200})],
        operator=True,
    )},
    "/ws/call/{client_id}": {"post": _op(
        "Run an action on a client (a client id, or a client type) and answer with its result (docs/BACKENDS.md)",
        "operator",
        _success("the command's result", {"command_id": {"type": "string"}, "result": {},
                                          "command": {"type": "object"}}, ["command_id", "command"]),
        body=_body({"type": "object", "required": ["action"], "properties": {
            "action": {"type": "string", "pattern": IDENT}, "params": {},
            "timeout": {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 3600},
            "wait": {"type": "boolean"}}}),
        params=[_path_param("client_id", {"type": "string", "minLength": 1, "maxLength": 200})],
        extra=[_RATE, ["409", "422", "504"]], operator=True,
    )},
    "/ws/commands": {"get": _op(
        "Pending commands and the most recent finished ones, with state, caller, client and duration", "operator",
        _success("the commands", {"pending": {"type": "array", "items": {"type": "object"}},
                                  "recent": {"type": "array", "items": {"type": "object"}},
                                  "count": {"type": "integer"}, "stats": {"type": "object"}},
                 ["pending", "recent", "count"]),
        operator=True,
    )},
    "/ws/commands/{command_id}": {"get": _op(
        "One command (404, code unknown_command, when unknown); ?wait= seconds for it to end", "operator",
        _success("the command", {"command": {"type": "object"}}, ["command"]),
        params=[_path_param("command_id", {"type": "string", "minLength": 1, "maxLength": 64}),
                _query("wait", {"type": "number", "minimum": 0})],
        operator=True,
    )},
    "/ws": {"get": {
        "summary": "The WebSocket endpoint (docs/TRANSPORTS.md); a plain GET is told to upgrade",
        "tags": ["client"], "x-websocket": True,
        "responses": {"426": {"description": "connect with a WebSocket client",
                              "content": _json(_ref("Error"))}, **_errors()},
    }},
    "/ws/events": {"get": _op(
        "The session's messages as Server-Sent Events (docs/TRANSPORTS.md)", "client",
        {"description": "an event stream", "content": {"text/event-stream": {"schema": {"type": "string"}}}},
        params=[
            _query("client_id", {"type": "string", "minLength": 1, "maxLength": 200}, required=True),
            _query("last_event_id", {"type": "integer", "minimum": 0, "maximum": INT_MAX}),
            _query("client_secret", {"type": "string", "maxLength": 200}),
            _SECRET_HEADER,
        ],
    )},
    "/ws/lrsocket": {"post": _op(
        "Announce the plug-in's LrSocket port: the bridge connects to 127.0.0.1 on it and writes a probe line "
        "(docs/TRANSPORTS.md)", "client",
        _success("the probe was written", {"port": {"type": "integer"}, "probe_sent": {"type": "boolean"}},
                 ["port", "probe_sent"]),
        body=_body({"type": "object", "required": ["client_id", "port"], "properties": {
            "client_id": {"type": "string", "minLength": 1, "maxLength": 200},
            "client_secret": {"type": "string", "maxLength": 200},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "host": {"type": "string", "enum": ["127.0.0.1"]},
        }}),
        params=[_SECRET_HEADER], extra=[["401", "409"], _RATE],
    )},
    "/ws/lrsocket/probe": {"post": _op(
        "Acknowledge the probe read on the LrSocket: the bridge may push to it", "client",
        _success("acknowledged", {"port": {"type": "integer"}}, ["port"]),
        body=_body({"type": "object", "required": ["client_id", "port", "probe"], "properties": {
            "client_id": {"type": "string", "minLength": 1, "maxLength": 200},
            "client_secret": {"type": "string", "maxLength": 200},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "probe": {"type": "string", "minLength": 1, "maxLength": 64},
        }}),
        params=[_SECRET_HEADER], extra=[["401", "409"]],
    )},
    "/ws/lrsocket/ack": {"post": _op(
        "Acknowledge pushed messages up to seq; pushing false: long-poll again", "client",
        _success("acknowledged", {"acked": {"type": "integer"}, "pushing": {"type": "boolean"},
                                  "next_seq": {"type": "integer"}}, ["acked", "pushing"]),
        body=_body({"type": "object", "required": ["client_id"], "properties": {
            "client_id": {"type": "string", "minLength": 1, "maxLength": 200},
            "client_secret": {"type": "string", "maxLength": 200},
            "seq": {"type": "integer", "minimum": 0, "maximum": INT_MAX},
        }}),
        params=[_SECRET_HEADER], extra=[["401"]],
    )},
    "/ws/health": {"get": {
        "summary": "Gateway, hub and notifier health", "tags": ["operator"], "security": [{}, {"bearer": []}],
        "responses": {
            "200": {"description": "hub reachable", "content": _json({"type": "object", "required": ["status"]})},
            **_errors(_OPERATOR),
            "503": {"description": "hub not reachable", "content": _json({"type": "object"})},
        },
    }},
    "/metrics": {"get": {
        "summary": "Counters and histograms in the Prometheus text format", "tags": ["operator"],
        "security": [{}, {"bearer": []}],
        "responses": {"200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
                      **_errors(_OPERATOR)},
    }},
    "/ws/dashboard": {"get": {
        "summary": "The live dashboard page (its files are under /ws/dashboard/static/)", "tags": ["operator"],
        "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}},
                      **_errors()},
    }},
    "/ws/openapi.json": {"get": {
        "summary": "This description", "tags": ["client"],
        "responses": {"200": {"description": "OpenAPI 3", "content": _json({"type": "object"})},
                      **_errors()},
    }},
}

_ERROR_TEXT = {
    "400": "a field is missing or wrong (`field` names it), or the body is not a JSON object",
    "401": "an operator route without the right `Authorization: Bearer` token",
    "403": "a cross-site request (foreign Origin or Sec-Fetch-Site)",
    "404": "unknown route, or unknown client id (also a wrong client_secret)",
    "413": "the body or the message is larger than the limit",
    "415": "a body that is not Content-Type: application/json",
    "421": "the Host header or request line names another server",
    "409": "LrSocket push: no current announcement, the port is held already, or nothing listens on it",
    "429": "too many clients, handshakes or sends: retry after Retry-After seconds",
    "503": "the hub is not reachable: retry after Retry-After seconds",
    "409": "a call: delivered, no answer by the deadline (command_unknown: it may have run)",
    "422": ("a call: the client ran the command and it failed (command_failed, with its message), "
            "or has no such action (not_supported)"),
    "504": "a call: never delivered before the deadline (command_expired: it did not run, retry at will)",
}

SPEC = {
    "openapi": "3.0.3",
    "info": {
        "title": "Lightroom bridge gateway",
        "version": "1.0",
        "description": "HTTP long-poll API of the bridge; see README.md and docs/SECURITY.md.",
    },
    "paths": PATHS,
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                       "description": "BRIDGE_ADMIN_TOKEN, for operator routes when set"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["success", "error", "code"],
                "properties": {
                    "success": {"type": "boolean", "enum": [False]},
                    "error": {"type": "string"},
                    "code": {"type": "string"},
                    "field": {"type": "string"},
                },
            },
            "Message": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"type": "string", "pattern": IDENT}},
            },
            "Delivered": {
                "type": "object",
                "required": ["type", "seq", "timestamp"],
                "properties": {"type": {"type": "string"}, "seq": {"type": "integer"},
                               "timestamp": {"type": "string"}, "channel": {"type": "string"}},
            },
        },
        "responses": {
            f"E{code}": {"description": text, "content": _json(_ref("Error"))}
            for code, text in _ERROR_TEXT.items()
        },
    },
}

_BODY = orjson.dumps(SPEC)


class OpenAPI:
    """GET /ws/openapi.json: the description above."""

    def __init__(self, hub=None, config=None):
        pass

    async def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_JSON
        resp.data = _BODY
