"""Fixtures of the system tests beyond tests/conftest.py."""

import pytest

from tests.lua.harness import LuaClient


@pytest.fixture
def lua_clients(tmp_path):
    """Start Lua clients (``start(stack, base_url=None, **settings)``); each is stopped by PID at teardown."""
    clients = []

    def start(stack, base_url=None, **kw):
        client = LuaClient(base_url or stack.base_url, tmp_path / f"lua{len(clients)}", **kw)
        clients.append(client)
        return client.start()

    yield start
    for client in clients:
        client.stop()
