"""``make soak``: the relay under steady traffic and one fault at a time, checked message by message.

Long-poll, WebSocket and SSE clients subscribe to busy channels; a backend
publishes over ZeroMQ through the notifier and two more over HTTP (channel
broadcasts, sends to one client), each payload numbered; every 20-40 s
(seeded) one fault strikes: SIGKILL of the hub, of the notifier or of a
gateway worker, SIGSTOP of the hub, a 4 MiB backlog, 200 idle subscribers.
The checker then says, per client and per fault window, what was received,
lost (counted or silent), duplicated and reordered (docs/DURABILITY.md,
"The soak test").
"""

from benchmarks.soak.runner import Soak

__all__ = ["Soak"]
