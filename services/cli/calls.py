"""``call`` and ``commands``: run an action on a client, and see the commands the bridge tracks (docs/BACKENDS.md)."""

import json
from urllib.parse import quote

from services.cli import exits
from services.cli.commands import _listing, emit_json
from services.cli.http import ApiError
from services.cli.tables import duration

# Codes a call ends with when it did not end in a result (POST /ws/call): printed, exit 1.
_ENDED = ("command_failed", "not_supported", "command_expired", "command_unknown")


def parse_params(text):
    """The params argument: any JSON value (an object, usually); ``ValueError`` says what is wrong."""
    try:
        return json.loads(text)
    except ValueError as ex:
        raise ValueError(f"the params are not valid JSON ({ex})") from None


def call(args, bridge, out):
    """Run ACTION on CLIENT and print its result (JSON); exit 1 with how it ended otherwise."""
    body = {"action": args.action, "params": parse_params(args.params), "timeout": args.within}
    if args.no_wait:
        body["wait"] = False
    path = f"/ws/call/{quote(args.client, safe='')}"
    status, reply, _ = bridge.request("POST", path, body, timeout=max(bridge.timeout, args.within + 5))
    reply = reply if isinstance(reply, dict) else {}
    if 200 <= status < 300:
        if args.json:
            emit_json(out, reply)
        elif args.no_wait:
            out.write(reply.get("command_id", "") + "\n")
        else:
            out.write(json.dumps(reply.get("result"), indent=2, sort_keys=True) + "\n")
        return exits.OK
    if reply.get("code") in _ENDED:
        if args.json:
            emit_json(out, reply)
        else:
            out.write(f"{reply.get('code')}: {reply.get('error')} (command {reply.get('command_id')})\n")
        return exits.FAILED
    raise ApiError(status, reply)


def commands(args, bridge, out):
    """Pending commands, then the most recent finished ones."""
    code, reply, _ = bridge.request("GET", "/ws/commands")
    if code == 404 and (reply or {}).get("code") in (None, "not_found"):
        out.write("this bridge has no /ws/commands route (its gateway is older)\n")
        return exits.UNSUPPORTED
    if not 200 <= code < 300:
        raise ApiError(code, reply)
    listed = reply.get("pending", []) + reply.get("recent", [])
    if args.json:
        emit_json(out, {"pending": reply.get("pending", []), "recent": reply.get("recent", []),
                        "stats": reply.get("stats", {})})
        return exits.OK
    return _listing(args, out, listed, "no commands",
                    ["COMMAND", "STATE", "ACTION", "CALLER", "CLIENT", "CREATED", "DURATION", "DETAIL"],
                    lambda c: [c.get("command_id"), c.get("state"), c.get("action"), c.get("caller"),
                               c.get("client_id"), c.get("created_at"), duration(c.get("duration")),
                               _detail(c)])


def _detail(command):
    error = command.get("error")
    if error:
        return f"{error.get('code')}: {error.get('message')}"[:60]
    progress = command.get("progress")
    if progress:
        pct = progress.get("pct")
        return (f"{pct:g}% " if isinstance(pct, (int, float)) else "") + (progress.get("text") or "")
    return None
