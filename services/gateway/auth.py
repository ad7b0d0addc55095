"""Two roles: client routes (a plugin or script) and operator routes (admin, backends).

Client routes are open to any local program that passes the Host/Origin guard;
each client then proves it owns its id with the ``client_secret`` its
handshake returned. Whether it must is one rule, decided here where the
request enters (``ClientSecrets``: BRIDGE_REQUIRE_CLIENT_SECRET of the
gateway, on by default off loopback), whatever environment the hub runs with;
a secret that is given is always checked, by the hub, the owner of sessions. Operator
routes need ``Authorization: Bearer <BRIDGE_ADMIN_TOKEN>`` whenever a token is
set, and a token must be set when the gateway listens off loopback.

A route's role comes from its URI template after routing; anything not listed
as a client route is an operator route, so a new route is protected until
someone decides otherwise.
"""

import hmac

from services.gateway.inputs import InputError

CLIENT_ROUTES = frozenset({
    "/ws/handshake",
    "/ws/poll",
    "/ws/send",
    "/ws/disconnect",
    "/ws/events",
    "/ws/lrsocket",  # LrSocket push (docs/TRANSPORTS.md): these always need the client_secret
    "/ws/lrsocket/probe",
    "/ws/lrsocket/ack",
    "/ws",
    "/ws/openapi.json",
    "/ws/dashboard",  # the page and its files hold no data: its calls to operator routes carry the token
})
PUBLIC_PREFIXES = ("/ws/dashboard/static/",)


def is_client_route(uri_template, path=""):
    """True when ``uri_template`` is a client route (everything else is an operator route)."""
    return uri_template in CLIENT_ROUTES or path.startswith(PUBLIC_PREFIXES)


class ClientSecrets:
    """Falcon middleware: tells ``inputs.client_secret`` whether a request naming a client must give its secret.

    A request that must and does not is answered like an unknown id (404
    ``unknown_client``), before the hub is asked: no oracle for guessing ids.
    """

    def __init__(self, config):
        self.required = config.require_client_secret

    async def process_request(self, req, resp):
        req.context.client_secret_required = self.required

    async def process_request_ws(self, req, ws):
        req.context.client_secret_required = self.required


class OperatorAuth:
    """Falcon middleware: operator routes need the bearer token when one is configured."""

    def __init__(self, config):
        token = config.admin_token
        self.token = token.encode() if token else None

    def check(self, req):
        """Raise ``InputError(401)`` unless the route is a client route or the token matches."""
        if self.token is None or is_client_route(req.uri_template, req.path):
            return
        scheme, _, given = (req.get_header("Authorization") or "").partition(" ")
        # compare_digest: the time taken does not tell how much of the token was right.
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token):
            raise InputError(401, "this operator route needs 'Authorization: Bearer <BRIDGE_ADMIN_TOKEN>'",
                             "Authorization", "unauthorized", {"WWW-Authenticate": 'Bearer realm="bridge"'})

    async def process_resource(self, req, resp, resource, params):
        self.check(req)

    async def process_resource_ws(self, req, ws, resource, params):
        self.check(req)
