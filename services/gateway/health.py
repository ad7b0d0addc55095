"""GET /ws/health: is each part of the bridge there, and how quickly does the hub answer.

``status`` is ``ok`` (gateway, hub and a notifier all heard from), ``degraded``
(the hub answers but no notifier was heard within ``NOTIFIER_QUIET_SECONDS``:
backend events are not arriving) or ``down`` (the hub does not answer; HTTP
503). The notifier is "heard" when the hub receives any event or heartbeat
from it; its system_status samples (every BRIDGE_STATUS_INTERVAL, 5 s) keep it
fresh.
"""

import os
import time

import falcon
import orjson

from services import protocol
from services.gateway.hub_client import HubError, HubUnavailable

NOTIFIER_QUIET_SECONDS = 30.0


def assess(hub_ok, notifier_age):
    """The overall status word from the hub's reachability and the notifier's age."""
    if not hub_ok:
        return "down"
    if notifier_age is None or notifier_age > NOTIFIER_QUIET_SECONDS:
        return "degraded"
    return "ok"


class Health:
    """GET /ws/health: gateway, hub (with round-trip time) and notifier, in one answer."""

    def __init__(self, hub, config):
        self.hub = hub
        self.config = config

    async def on_get(self, req, resp):
        started = time.perf_counter()
        hub = {"endpoint": self.config.hub_rpc, "reachable": False}
        notifier = {"last_seen_seconds": None, "state": "unknown"}
        try:
            reply = await self.hub.request(protocol.OP_STATUS)
        except (HubUnavailable, HubError) as ex:
            hub["error"] = str(ex)
            age = None
        else:
            status = reply["status"]
            hub.update(
                reachable=True,
                rtt_ms=round((time.perf_counter() - started) * 1000, 3),
                uptime_seconds=status.get("uptime_seconds"),
                clients=status.get("clients"),
            )
            age = status.get("notifier_last_seen_seconds")
            notifier["last_seen_seconds"] = age
            if age is None:
                notifier["state"] = "never_seen"
            else:
                notifier["state"] = "ok" if age <= NOTIFIER_QUIET_SECONDS else "quiet"
        overall = assess(hub["reachable"], age)
        body = {
            "success": hub["reachable"],
            "status": overall,
            "gateway": {"up": True, "pid": os.getpid(), "workers": self.config.workers},
            "hub": hub,
            "notifier": notifier,
        }
        if not hub["reachable"]:
            body["error"] = "the bridge hub is not available"
            resp.status = falcon.HTTP_503
        resp.content_type = falcon.MEDIA_JSON
        resp.data = orjson.dumps(body)
