"""The ASGI application object that gunicorn's uvicorn workers (or uvicorn alone) serve."""

from services import curve
from services.logs import setup_logging
from services.gateway.app import create_asgi
from services.gateway.config import load_config
from services.gateway.hub_client import HubClient

setup_logging("gateway")
config = load_config()
app = create_asgi(config, HubClient(config.hub_rpc, config.hub_timeout,
                                    curve.load_client(config.curve_dir) if config.curve_dir else None))
