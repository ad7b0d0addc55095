"""The commands that ask a running bridge: status, clients, jobs, broadcast, send, cleanup, dashboard.

Each takes the parsed arguments, a ``Bridge`` and an output stream, prints a
readable answer (or JSON with ``--json``) and returns an exit code.
"""

import json
import webbrowser
from urllib.parse import quote

from services.cli import exits
from services.cli.http import ApiError
from services.cli.tables import duration, table

MAX_PAGES = 1000  # pages of /ws/clients read for one listing (a page is at most 1 MiB)


def emit_json(out, value):
    out.write(json.dumps(value, indent=2, sort_keys=True) + "\n")


def parse_message(text):
    """A message argument: a JSON object with a ``type``; ``ValueError`` says what is wrong."""
    try:
        message = json.loads(text)
    except ValueError as ex:
        raise ValueError(f"the message is not valid JSON ({ex})") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ValueError('the message must be a JSON object with a "type", e.g. \'{"type": "notice"}\'')
    return message


# ------------------------------------------------------------------ status
def status(args, bridge, out):
    """Health and summary; exit 0 ok, 1 degraded, 3 hub down."""
    code, health, _ = bridge.request("GET", "/ws/health")
    if code == 404:
        health = None
    elif code not in (200, 503):
        raise ApiError(code, health)
    summary = None
    if health is None or health.get("hub", {}).get("reachable"):
        summary = bridge.get("/ws/status").get("status")
    state = (health or {}).get("status", "ok" if summary else "down")
    if args.json:
        emit_json(out, {"address": bridge.address, "status": state, "health": health, "summary": summary})
    else:
        out.write(f"bridge at {bridge.address}: {state}\n")
        if health is not None:
            hub = health["hub"]
            if hub.get("reachable"):
                out.write(f"  hub        reachable, {hub.get('rtt_ms', 0):.1f} ms round trip, "
                          f"up {duration(hub.get('uptime_seconds'))}\n")
            else:
                out.write(f"  hub        NOT reachable at {hub.get('endpoint')}: {hub.get('error', '')}\n")
            notifier = health["notifier"]
            age = notifier.get("last_seen_seconds")
            heard = "never heard from" if age is None else f"last heard {duration(age)} ago"
            out.write(f"  notifier   {heard} ({notifier.get('state')})\n")
        if summary:
            by_type = ", ".join(f"{t} {n}" for t, n in sorted(summary.get("clients_by_type", {}).items()))
            out.write(f"  clients    {summary['clients']}" + (f" ({by_type})" if by_type else "") + "\n")
            channels = ", ".join(f"{c} {n}" for c, n in sorted(summary.get("channels", {}).items())) or "-"
            out.write(f"  channels   {channels}\n")
            m = summary.get("messages", {})
            out.write(f"  messages   {m.get('published', 0)} published, {m.get('delivered', 0)} delivered, "
                      f"{m.get('dropped', 0)} dropped, {summary.get('queued_messages', 0)} queued\n")
    return {"ok": exits.OK, "degraded": exits.FAILED}.get(state, exits.NOT_RUNNING)


# ----------------------------------------------------------------- clients
def clients(args, bridge, out):
    listed = []
    reply = bridge.get("/ws/clients")
    for _ in range(MAX_PAGES):  # a page is at most 1 MiB; each next one starts after the last id listed
        listed.extend(reply.get("clients", []))
        if not reply.get("next"):
            break
        reply = bridge.get("/ws/clients?after=" + quote(reply["next"], safe=""))
    return _listing(args, out, listed, "no clients connected",
                    ["ID", "TYPE", "NAME", "TRANSPORT", "QUEUE", "DROPPED", "LAST SEEN", "CHANNELS"],
                    lambda c: [c.get("id"), c.get("client_type"), c.get("client_name"), c.get("transport") or "poll",
                               c.get("queue_depth", 0), c.get("dropped", 0),
                               duration(c.get("idle_seconds")) + " ago", c.get("subscriptions") or []])


def _listing(args, out, listed, empty, headers, row):
    """Print ``listed`` as JSON (--json), as ``empty`` when there is nothing, or as a table of ``row(item)``."""
    if args.json:
        emit_json(out, listed)
    elif not listed:
        out.write(empty + "\n")
    else:
        out.write(table(headers, [row(item) for item in listed]) + "\n")
    return exits.OK


# -------------------------------------------------------------------- jobs
def jobs(args, bridge, out):
    code, reply, _ = bridge.request("GET", "/ws/jobs")
    if code == 404 and (reply or {}).get("code") in (None, "not_found"):
        out.write("this bridge has no /ws/jobs route (its gateway is older): "
                  "watch jobs with `lrbridge tail --channel jobs` instead\n")
        return exits.UNSUPPORTED
    if not 200 <= code < 300:
        raise ApiError(code, reply)
    return _listing(args, out, reply.get("jobs", []), "no jobs",
                    ["JOB", "STATUS", "PROGRESS", "STAGE", "MESSAGE", "UPDATED"],
                    lambda job: [job.get("job_id"), job.get("status"),
                                 "-" if job.get("progress") is None else _bar(job["progress"]), job.get("stage"),
                                 job.get("message") or job.get("error"), job.get("updated_at")])


def _bar(progress, width=20):
    try:
        value = max(0.0, min(100.0, float(progress)))
    except (TypeError, ValueError):
        return str(progress)
    filled = int(round(value / 100 * width))
    return "[" + "#" * filled + "." * (width - filled) + f"] {value:3.0f}%"


# ------------------------------------------------------------- publishing
def broadcast(args, bridge, out):
    body = {"message": parse_message(args.message)}
    if args.channel:
        body["channel"] = args.channel
    reply = bridge.post("/ws/broadcast", body)
    if args.json:
        emit_json(out, reply)
    else:
        where = f"channel {args.channel}" if args.channel else "every client"
        out.write(f"delivered to {reply.get('delivered', 0)} client(s) on {where}\n")
    return exits.OK


def send(args, bridge, out):
    body = {"message": parse_message(args.message)}
    reply = bridge.post(f"/ws/send/{quote(args.client_id, safe='')}", body)
    if args.json:
        emit_json(out, reply)
    else:
        out.write(f"queued for client {args.client_id}\n")
    return exits.OK


def cleanup(args, bridge, out):
    body = {} if args.minutes is None else {"timeout_minutes": args.minutes}
    reply = bridge.post("/ws/cleanup", body)
    if args.json:
        emit_json(out, reply)
    else:
        removed = reply.get("removed_clients", [])
        out.write(f"removed {reply.get('removed', len(removed))} stale client(s)\n")
        for client_id in removed:
            out.write(f"  {client_id}\n")
    return exits.OK


def dashboard(args, bridge, out):
    url = f"http://{bridge.address}/ws/dashboard"
    if bridge.token:
        url += "#token=" + quote(bridge.token, safe="")
    out.write(url + "\n")
    if not args.no_open:
        webbrowser.open(url)
    return exits.OK
