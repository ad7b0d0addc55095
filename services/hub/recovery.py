"""What ``subscribe`` does beyond subscribing: recover missed messages, send snapshots.

A subscribe message may carry, per channel, the last position the client
saw::

    {"type": "subscribe", "channels": ["jobs"],
     "recover": {"jobs": {"offset": 123, "epoch": "9f2c…"}}}

Everything is queued in the same loop turn as the subscription itself, in
this order: the missed messages (oldest first), then for ``jobs`` and
``system`` a snapshot of the latest state, then whatever is published next.
The snapshot is sent for a channel the subscribe adds (a repeated subscribe
to a channel already held gets none), or always with ``"snapshot": true``,
or never with ``"snapshot": false``; and whenever a recovery on that channel
was not complete. A complete recovery needs no snapshot. The reply says per
channel what happened (``recovery``) and where each channel stands now
(``positions``).
"""

from services.protocol import ProtocolError

SNAPSHOT_CHANNELS = ("jobs", "system")
MAX_EPOCH_CHARS = 64


def positions(recover, channels):
    """``{channel: (offset, epoch)}`` from a subscribe's ``recover`` field; raises ``bad_request``."""
    if recover is None or recover == []:  # Lua's empty table arrives as []
        return {}
    if not isinstance(recover, dict):
        raise ProtocolError("bad_request", "'recover' must be an object of channel -> {offset, epoch}", "recover")
    out = {}
    for channel, position in recover.items():
        if channel not in channels:
            raise ProtocolError("bad_request", f"'recover' names {str(channel)[:70]!r}, not in 'channels'", "recover")
        if not isinstance(position, dict):
            raise ProtocolError("bad_request", f"recover.{channel} must be an object {{offset, epoch}}", "recover")
        offset = position.get("offset")
        if isinstance(offset, float) and offset.is_integer():
            offset = int(offset)  # Lua numbers are doubles
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ProtocolError("bad_request", f"recover.{channel}.offset must be an integer >= 0", "recover")
        epoch = position.get("epoch")
        if not isinstance(epoch, str) or len(epoch) > MAX_EPOCH_CHARS:
            raise ProtocolError("bad_request", f"recover.{channel}.epoch must be a string", "recover")
        out[channel] = (offset, epoch)
    return out


def wants_snapshot(message):
    """The subscribe's ``snapshot`` flag (``None`` when absent); raises ``bad_request`` unless true or false."""
    flag = message.get("snapshot")
    if flag is not None and not isinstance(flag, bool):
        raise ProtocolError("bad_request", "'snapshot' must be true or false", "snapshot")
    return flag


def subscribed(hub, session, channels, wanted, snapshot=None, added=()):
    """Queue the replays and snapshots for a subscription; returns the reply's extra fields.

    ``added``: the channels this subscribe adds (the default for ``snapshot``).
    """
    reports = hub.recover(session, wanted, hub.config.history_size) if wanted else {}
    for channel in channels:
        if channel not in SNAPSHOT_CHANNELS:
            continue
        report = reports.get(channel)
        want = channel in added if snapshot is None else snapshot
        if (want and not (report and report["recovered"])) or (report and not report["recovered"]):
            hub.snapshot(session, channel)
    fields = {"positions": {channel: hub.history.channel(channel).position() for channel in channels}}
    if reports:
        fields["recovery"] = reports
    return fields
