"""The gateway's composition root: ``create_app(config, hub)`` wires routes, guards and errors."""

import falcon.asgi

from services.gateway import calls, dashboard, errors, health, jobs, lrsocket, metrics, resources, sse, websocket
from services.gateway.access_log import AccessLog
from services.gateway.compression import GzipResponses
from services.gateway.fastpoll import FastPoll
from services.gateway.auth import ClientSecrets, OperatorAuth
from services.gateway.guard import HostOriginGuard
from services.gateway.openapi import OpenAPI


class _Lifespan:
    """Closes the hub client when the server shuts the worker down."""

    def __init__(self, hub):
        self.hub = hub

    async def process_shutdown(self, scope, event):
        await self.hub.close()


def create_app(config, hub, guard=None):
    """The Falcon ASGI app serving ``/ws/*`` through ``hub`` (a ``HubClient``)."""
    middleware = [AccessLog(), guard or HostOriginGuard(config), ClientSecrets(config), OperatorAuth(config), _Lifespan(hub),
                  GzipResponses()]
    app = falcon.asgi.App(middleware=middleware, cors_enable=False)
    app.req_options.strip_url_path_trailing_slash = True
    app.req_options.auto_parse_form_urlencoded = False
    routes = {
        "/ws/handshake": resources.Handshake,
        "/ws/poll": resources.Poll,
        "/ws/send": resources.Send,
        "/ws/disconnect": resources.Disconnect,
        "/ws/clients": resources.Clients,
        "/ws/status": resources.Status,
        "/ws/broadcast": resources.Broadcast,
        "/ws/send/{client_id}": resources.SendToClient,
        "/ws/send_to_type/{client_type}": resources.SendToType,
        "/ws/notify/{kind}": resources.Notify,
        "/ws/cleanup": resources.Cleanup,
        "/ws/jobs": jobs.Jobs,
        "/ws/jobs/{job_id}": jobs.Job,
        "/ws/call/{client_id}": calls.Call,
        "/ws/commands": calls.Commands,
        "/ws/commands/{command_id}": calls.Command,
        "/ws/health": health.Health,
        "/metrics": metrics.Metrics,
        "/ws": websocket.WebSocketEndpoint,
        "/ws/events": sse.Events,
        "/ws/lrsocket": lrsocket.Announce,
        "/ws/lrsocket/probe": lrsocket.Probe,
        "/ws/lrsocket/ack": lrsocket.Ack,
        "/ws/openapi.json": OpenAPI,
    }
    for route, resource in routes.items():
        app.add_route(route, resource(hub, config))
    dashboard.install(app)
    errors.install(app)
    return app


def create_asgi(config, hub):
    """What the server runs: the Falcon app behind ``FastPoll``, which answers ``GET /ws/poll`` with the
    same guard, checks and error shapes ahead of the framework (services/gateway/fastpoll.py)."""
    guard = HostOriginGuard(config)
    return FastPoll(create_app(config, hub, guard), hub, config, guard)
