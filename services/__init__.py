"""The Lightroom bridge's services: hub, notifier, gateway, and the ``lrbridge`` command."""

__version__ = "0.1.0"
