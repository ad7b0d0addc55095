"""Run the hub: ``python -m services.hub``."""

import sys

from services.launch import serve
from services.hub.config import load_config
from services.hub.server import HubServer

if __name__ == "__main__":
    sys.exit(serve("hub", load_config, HubServer))
