"""Run the notifier: ``python -m services.notifier``."""

import sys

from services.launch import serve
from services.notifier.config import load_config
from services.notifier.server import NotifierServer

if __name__ == "__main__":
    sys.exit(serve("notifier", load_config, NotifierServer))
