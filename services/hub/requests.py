"""The one request record a poll hands the hub: what the handler read off the wire, in one value."""

from typing import NamedTuple


class PollRequest(NamedTuple):
    """One poll: who to answer (``peer``, ``req_id``), how long it may wait, what it acknowledges.

    A WebSocket/SSE connection polls with its ``reader`` token and
    ``after`` (the last seq it pushed); its first poll ``attach``es. With a
    ``window`` (and ``window_bytes``) the poll is a stream (docs/TRANSPORTS.md).
    """

    peer: bytes
    req_id: object
    wait: float = 0.0
    ack: int = None
    after: int = None
    reader: str = None
    transport: str = None
    attach: bool = False
    window: int = None
    window_bytes: int = None
    json: bool = False  # answer with ``messages_json``, the messages as one JSON array (docs/PROTOCOL.md)

    @classmethod
    def of(cls, peer, req):
        """The record for a checked ``poll`` request (services/protocol.py ``REQUEST_FIELDS``)."""
        return cls(peer, req["id"], req.get("wait"), req.get("ack"), req.get("after"), req.get("reader"),
                   req.get("transport"), bool(req.get("attach")), req.get("window"), req.get("window_bytes"),
                   bool(req.get("json")))
