"""The hub copies SQLite's write-ahead log into the database while it has nothing to do, not inside a busy turn
(services/hub/store.py ``IDLE_WAL_COMMITS``)."""

import os

import zmq

from services.hub.config import HubConfig
from services.hub.server import HubServer
from services.hub.store import IDLE_WAL_COMMITS
from tests.stack import free_port


def _server(path):
    ports = [free_port() for _ in range(4)]
    return HubServer(HubConfig(
        rpc_endpoint=f"tcp://127.0.0.1:{ports[0]}", events_endpoint=f"tcp://127.0.0.1:{ports[1]}",
        client_events_endpoint=f"tcp://127.0.0.1:{ports[2]}", notifier_rpc_endpoint=f"tcp://127.0.0.1:{ports[3]}",
        store=str(path),
    ))


def test_an_idle_turn_moves_the_log_into_the_database_once_enough_commits_wait(tmp_path):
    path = tmp_path / "hub.db"
    server = _server(path)
    poller = zmq.Poller()
    poller.register(server.rpc, zmq.POLLIN)
    try:
        for _ in range(IDLE_WAL_COMMITS - 1):
            server.hub.create_session("lightroom")
            server._release(force=True)
        size = os.path.getsize(path)
        server.run_once(poller)
        assert os.path.getsize(path) == size  # not yet due: the log stays where it is
        server.hub.create_session("lightroom")
        server._release(force=True)
        assert server.store.idle_due()
        server.run_once(poller)  # nothing waits on its sockets: an idle turn
        assert not server.store.idle_due()
        assert os.path.getsize(path) > size  # the sessions' pages are in the database file now
    finally:
        server.close()
        server.store.close()
