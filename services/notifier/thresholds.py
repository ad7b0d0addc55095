"""Resource thresholds with hysteresis: one ``resource_warning`` per crossing, not per sample.

A ``Watch`` is armed until its value reaches the threshold; it then sends a
``warning`` and stays quiet until the value falls ``hysteresis`` below the
threshold, when it sends one ``ok`` (recovered) and re-arms. A value that
hovers around the threshold therefore does not flood the clients.
"""

from services import messages

_LABELS = {"cpu": "CPU usage", "memory": "Memory usage", "disk": "Disk usage", "gpu_temp": "GPU temperature"}


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Watch:
    """One resource, read from one field of a status sample, against one threshold."""

    def __init__(self, resource, field, threshold, hysteresis, unit="%"):
        self.resource = resource
        self.field = field
        self.threshold = threshold
        self.hysteresis = hysteresis
        self.unit = unit
        self.alarmed = False

    def check(self, status):
        """The ``resource_warning`` this sample causes, or ``None`` (absent fields cause none)."""
        value = status.get(self.field)
        if not _is_number(value):
            return None
        if not self.alarmed and value >= self.threshold:
            self.alarmed = True
            return self._message(value, "warning", "is above")
        if self.alarmed and value <= self.threshold - self.hysteresis:
            self.alarmed = False
            return self._message(value, "ok", "is back below")
        return None

    def _message(self, value, level, verb):
        label = _LABELS.get(self.resource, self.resource)
        text = f"{label} {value:g}{self.unit} {verb} the threshold of {self.threshold:g}{self.unit}"
        return messages.resource_warning(
            self.resource, value, self.threshold, level=level, message=text, field=self.field,
        )


def watches_from_config(config):
    """The watches the notifier runs; a threshold of 0 turns that warning off."""
    table = (
        ("cpu", "cpu_usage", config.warn_cpu, "%"),
        ("memory", "memory_usage", config.warn_memory, "%"),
        ("disk", "disk_usage", config.warn_disk, "%"),
        ("gpu_temp", "gpu_temp", config.warn_gpu_temp, "°C"),
    )
    return [Watch(r, f, t, config.warn_hysteresis, u) for r, f, t, u in table if t > 0]
