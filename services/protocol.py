"""The one protocol between the bridge's processes, in two halves the services import as one module.

- services/schema.py: the protocol's name and versions, the operations and
  their fields (``REQUEST_FIELDS``, ``CLIENT_OPS``), the publish targets,
  the error codes (``ERRORS``, rows of services/endings.py) and the checks
  of what a peer sent (``check_request``, ``check_reply``, ``ProtocolError``);
- services/wire.py: the frames, the msgpack codec, batches and the
  ``encode_*``/``decode_*`` of every message, each checking its frames in
  one place.

Everything is used as ``protocol.NAME``; docs/PROTOCOL.md states the same
rules in prose.
"""

from services.schema import *  # noqa: F401,F403
from services.wire import *  # noqa: F401,F403
