"""LrSocket push into the plug-in: who announced which port, and whether its probe came back.

The plug-in binds an LrSocket in receive mode and announces its port
(``push_announce``, with the session's secret). The gateway connects to
127.0.0.1 on that port only, writes a probe line and asks ``push_wait``,
which is answered when the plug-in acknowledges the probe over HTTP
(``push_proof``): only then does the gateway open its stream poll (transport
``lrsocket``) and take the session over from the long-poll. Acks and the
plug-in's light check come over HTTP too (``push_check``), so the plug-in
needs no send-mode socket. docs/TRANSPORTS.md has the rules.

One ``Announcement`` per session at most, kept in ``hub.lrsocket`` (client
id -> announcement); entries of sessions that are gone are pruned at the next
announcement, so the table never holds more than the sessions plus those.
"""

import hmac
import math
import uuid

from services import protocol
from services.protocol import ProtocolError

# A probe not acknowledged within this many seconds is refused: the plug-in falls back to long-poll.
PROBE_SECONDS = 2.0
# How long an announced port counts as held while its probe is out (the gateway gives up after PROBE_SECONDS).
PROBING_HOLD = PROBE_SECONDS + 1.0
MAX_PORT = 65535


class Announcement:
    """A session's announced LrSocket port, its probe, and the gateway reader that holds the connection."""

    __slots__ = ("port", "probe", "at", "proven", "waiter", "reader")

    def __init__(self, port, probe, at):
        self.port = port
        self.probe = probe
        self.at = at  # hub clock at the announcement
        self.proven = False  # the plug-in acknowledged the probe
        self.waiter = None  # (peer, req_id) of the gateway's push_wait, parked until the proof
        self.reader = None  # the gateway stream's reader token (session.reader once it attached)


def _table(hub):
    table = getattr(hub, "lrsocket", None)
    if table is None:
        table = hub.lrsocket = {}
    return table


def state(hub, session, entry):
    """``pushing`` (the gateway's stream holds the session), ``probing`` (the probe is out) or ``None``."""
    if entry is None:
        return None
    if entry.reader is not None and session.reader == entry.reader:
        return "pushing"
    if hub.clock() - entry.at < PROBING_HOLD:
        return "probing"
    return None


def _take_over(hub, session, entry):
    """The proven push becomes the session's one reader now: a parked long-poll is answered ``superseded``.

    The gateway's stream poll (with this reader token) follows; a plain poll
    before or after it takes the session back (docs/TRANSPORTS.md, rule 1).
    """
    session.reader = entry.reader
    session.transport = protocol.TRANSPORT_LRSOCKET
    hub.supersede(session)


def _port(req):
    port = req["port"]
    if not 1 <= port <= MAX_PORT:
        raise ProtocolError("bad_request", f"port must be from 1 to {MAX_PORT}", "port")
    return port


def announce(hub, ctx, req, session):
    """A session announces its LrSocket port: a new probe token, unless the bridge holds that port already."""
    port = _port(req)
    table = _table(hub)
    for client_id in [c for c in table if c not in hub.sessions]:
        del table[client_id]
    for client_id, entry in table.items():
        if entry.port == port and state(hub, hub.sessions[client_id], entry) is not None:
            raise ProtocolError("port_in_use", f"the bridge holds a connection to port {port} already", "port")
    old = table.get(session.client_id)
    now = hub.clock()
    if old is not None and not old.proven and now - old.at < PROBE_SECONDS:
        # one connection attempt per session per probe period: announcing port after port cannot make
        # the gateway knock on every local port
        wait = PROBE_SECONDS - (now - old.at)
        raise ProtocolError("rate_limited", f"one LrSocket announcement per {PROBE_SECONDS:g} s", "port",
                            retry_after=max(1, math.ceil(wait)))
    entry = Announcement(port, uuid.uuid4().hex, now)
    table[session.client_id] = entry
    return {"probe": entry.probe, "port": port, "acked": session.acked}


def wait(hub, ctx, req, session):
    """The gateway wrote the probe: park until the plug-in acknowledges it (answered at once if it did)."""
    entry = _table(hub).get(session.client_id)
    if entry is None or entry.probe != req["probe"]:
        raise ProtocolError("not_announced", "this probe is no longer the session's current one", "probe")
    entry.reader = req["reader"]
    if entry.proven:
        _take_over(hub, session, entry)
        return {"acked": session.acked}
    entry.waiter = (ctx.peer, req["id"])
    return None


def proof(hub, ctx, req, session):
    """The plug-in acknowledges the probe it read on its socket (port and probe must match the announcement)."""
    port = _port(req)
    entry = _table(hub).get(session.client_id)
    if entry is None:
        raise ProtocolError("not_announced", "this session announced no LrSocket port", "port")
    if port != entry.port:
        raise ProtocolError("bad_request", f"port {port} is not the port this session announced", "port")
    if not hmac.compare_digest(req["probe"].encode(), entry.probe.encode()):
        raise ProtocolError("bad_request", "probe is not the one the bridge sent", "probe")
    if hub.clock() - entry.at > PROBE_SECONDS:
        raise ProtocolError("not_announced", f"the probe is older than {PROBE_SECONDS:g} s: announce again", "probe")
    entry.proven = True
    hub.changes.sessions.add(session)
    if entry.waiter is not None:
        _take_over(hub, session, entry)
        peer, req_id = entry.waiter
        entry.waiter = None
        hub.reply(peer, req_id, {"acked": session.acked})
    return {"port": port}


def check(hub, ctx, req, session):
    """The plug-in's ack (``seq``) and light check: ``pushing`` is false once the bridge stopped pushing."""
    if req.get("seq") is not None:
        hub.ack(session, req["seq"])
    entry = _table(hub).get(session.client_id)
    pushing = state(hub, session, entry) == "pushing"
    return {"acked": session.acked, "pushing": pushing, "next_seq": session.next_seq}


HANDLERS = {
    protocol.OP_PUSH_ANNOUNCE: announce,
    protocol.OP_PUSH_WAIT: wait,
    protocol.OP_PUSH_PROOF: proof,
    protocol.OP_PUSH_CHECK: check,
}
