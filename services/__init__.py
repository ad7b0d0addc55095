"""The Lightroom bridge's services: hub, notifier, gateway, and the ``lrbridge`` command."""
