"""The OpenAPI description: it matches the app's routes, is served, and the real gateway obeys it under fuzzing."""

import falcon.inspect
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import checks as sc

from services.gateway.app import create_app
from services.gateway.config import load_config
from services.gateway.openapi import SPEC
from tests.stack import Stack

TOKEN = "openapi-fuzz-token-0123456789"
METHODS = {"get", "post", "put", "patch", "delete"}


def _app_routes():
    app = create_app(load_config({}), hub=None)
    routes = {}
    for route in falcon.inspect.inspect_routes(app):
        methods = {m.method.lower() for m in route.methods if not m.internal and m.method != "WEBSOCKET"}
        routes[route.path] = methods
    return routes


def test_every_route_is_described_and_every_description_is_a_route():
    routes = _app_routes()
    described = {path: {m for m in ops if m in METHODS} for path, ops in SPEC["paths"].items()}
    assert set(routes) == set(described), (set(routes) ^ set(described))
    for path, methods in routes.items():
        assert methods == described[path], path


def test_the_description_is_served_as_json(shared_stack):
    r = shared_stack.get("/ws/openapi.json")
    assert r.status == 200 and r.headers["content-type"].startswith("application/json")
    assert r.json == SPEC and r.json["openapi"].startswith("3.")


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory):
    """A stack with the token set (so 401 is exercised) and rates loose enough for a fuzzer."""
    stack = Stack(tmp_path_factory.mktemp("fuzz"), {
        "BRIDGE_ADMIN_TOKEN": TOKEN, "BRIDGE_HANDSHAKE_RATE": "0", "BRIDGE_SEND_RATE": "0",
        "BRIDGE_POLL_MAX_WAIT": "1", "BRIDGE_MAX_CLIENTS": "100000",
    })
    stack.start("hub", "gateway").wait_ready()
    yield stack
    stack.stop_all()


@schemathesis.check
def no_traceback(ctx, response, case):
    """No answer ever carries a Python traceback or exception text."""
    text = response.text or ""
    for needle in ("Traceback (most recent call last)", 'File "/', "Exception:"):
        if needle in text:
            raise AssertionError(f"{needle!r} in the body of {case.method} {case.path}")
    return None


CHECKS = [
    sc.not_a_server_error,
    sc.status_code_conformance,
    sc.content_type_conformance,
    sc.response_schema_conformance,
    sc.response_headers_conformance,
    no_traceback,
]

schema = schemathesis.openapi.from_dict(SPEC).exclude(path="/ws")  # the WebSocket upgrade is not HTTP


@schema.parametrize()
@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_fuzzed_requests_get_answers_the_spec_describes(case, fuzz_stack):
    """Bounded: 30 cases per operation (about 500 in all), each answered in well under a second."""
    headers = {"Authorization": f"Bearer {TOKEN}"} if case.operation.definition.raw.get("security") else {}
    headers["Host"] = f"127.0.0.1:{fuzz_stack.http_port}"
    response = case.call(base_url=fuzz_stack.base_url, headers=headers, timeout=10)
    case.validate_response(response, checks=CHECKS)
