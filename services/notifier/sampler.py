"""System status: sample the machine every few seconds and report it to channel ``system``.

The sampler runs on its own thread (``nvidia-smi`` can take a while) and
hands each ``system_status`` and ``resource_warning`` to the notifier's loop
as ingest frames over an inproc PUSH, exactly as a backend would: the loop
stays the only writer of the hub-facing socket.

Fields are omitted when they cannot be read, never faked: no GPU fields
unless ``nvidia-smi`` is present and answers.
"""

import json
import logging
import os
import shutil
import subprocess
import threading
import time

import psutil
import zmq

from services import messages, protocol
from services.notifier.thresholds import watches_from_config

log = logging.getLogger(__name__)

MIN_INTERVAL = 0.05
_GPU_QUERY = "index,name,utilization.gpu,temperature.gpu,memory.used,memory.total"
_GPU_FIELDS = (
    ("index", int), ("name", str), ("usage", float), ("temperature", float),
    ("memory_used_mib", float), ("memory_total_mib", float),
)


class NvidiaSmi:
    """GPU utilisation and temperature from ``nvidia-smi``, when it is installed."""

    def __init__(self, timeout=5.0, which=shutil.which):
        self.path = which("nvidia-smi")
        self.timeout = timeout
        self.failed = False

    def sample(self):
        """A list of per-GPU dicts (fields it could not read omitted), or ``[]``."""
        if self.path is None:
            return []
        try:
            out = subprocess.run(
                [self.path, f"--query-gpu={_GPU_QUERY}", "--format=csv,noheader,nounits"],
                capture_output=True, text=True, timeout=self.timeout, check=True,
            ).stdout
        except (OSError, subprocess.SubprocessError) as ex:
            if not self.failed:
                log.warning("nvidia-smi failed, GPU fields omitted: %s", ex)
            self.failed = True
            return []
        self.failed = False
        return [gpu for gpu in (self._parse(line) for line in out.splitlines() if line.strip()) if gpu]

    @staticmethod
    def _parse(line):
        gpu = {}
        for (name, cast), raw in zip(_GPU_FIELDS, (v.strip() for v in line.split(","))):
            try:
                gpu[name] = cast(raw)
            except ValueError:  # "[N/A]", "[Not Supported]": leave the field out
                continue
        return gpu


class MachineSource:
    """CPU, memory and disk through psutil; GPU through ``nvidia-smi`` where present."""

    def __init__(self, disk_path, gpu=None):
        self.disk_path = disk_path
        self.gpu = gpu if gpu is not None else NvidiaSmi()
        psutil.cpu_percent(None)  # the first call only starts the measurement

    def sample(self):
        """One status dict; a part that cannot be read is left out."""
        status = {}
        try:
            status["cpu_usage"] = psutil.cpu_percent(None)
            status["cpu_count"] = psutil.cpu_count()
        except OSError:
            pass
        try:
            vm = psutil.virtual_memory()
            status.update(memory_usage=vm.percent, memory_used=vm.total - vm.available, memory_total=vm.total)
        except OSError:
            pass
        try:
            du = psutil.disk_usage(self.disk_path)
            status.update(disk_usage=du.percent, disk_free=du.free, disk_total=du.total, disk_path=self.disk_path)
        except OSError:
            pass
        if hasattr(os, "getloadavg"):
            status["load_average"] = [round(v, 2) for v in os.getloadavg()]
        gpus = self.gpu.sample()
        if gpus:
            status["gpus"] = gpus
            for key, field in (("gpu_usage", "usage"), ("gpu_temp", "temperature")):
                if field in gpus[0]:
                    status[key] = gpus[0][field]
        return status


class FileSource:
    """Values read from a JSON object in a file on every sample (for tests and demos)."""

    def __init__(self, path):
        self.path = path
        self.failing = False

    def sample(self):
        """The file's object, or ``None`` (no status sent) when it is missing or not an object."""
        try:
            with open(self.path, encoding="utf-8") as f:
                values = json.load(f)
            if not isinstance(values, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as ex:
            if not self.failing:
                log.warning("status source %s unreadable: %s", self.path, ex)
            self.failing = True
            return None
        self.failing = False
        return values


def source_from_config(config):
    """``BRIDGE_STATUS_SOURCE``: empty samples this machine, otherwise a JSON file of values."""
    if config.status_source:
        return FileSource(config.status_source)
    return MachineSource(config.disk_path)


class Sampler:
    """Samples every ``interval`` seconds on a thread; sends status and warnings to ``endpoint``."""

    def __init__(self, config, context, endpoint, source=None, clock=time.monotonic):
        self.interval = max(MIN_INTERVAL, config.status_interval)
        self.context = context
        self.endpoint = endpoint
        self.source = source or source_from_config(config)
        self.watches = watches_from_config(config)
        self.clock = clock
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="status-sampler", daemon=True)

    def start(self):
        """Start sampling (the first sample is taken at once)."""
        self.thread.start()

    def stop(self, timeout=5.0):
        """Ask the thread to finish and wait for it (at most ``timeout`` seconds)."""
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join(timeout)

    def messages(self):
        """One sample's messages: ``system_status`` first, then any warnings it causes."""
        status = self.source.sample()
        if not status:
            return []
        out = [messages.system_status(status)]
        for watch in self.watches:
            warning = watch.check(status)
            if warning is not None:
                out.append(warning)
        return out

    def _run(self):
        sock = self.context.socket(zmq.PUSH)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 100)
        sock.connect(self.endpoint)
        next_at = self.clock()
        try:
            while not self.stopped.is_set():
                try:
                    batch = self.messages()
                except Exception:
                    log.exception("status sample failed")
                    batch = []
                for message in batch:
                    event = protocol.publish_event(protocol.TARGET_CHANNEL, message, messages.DEFAULT_CHANNELS[message["type"]])
                    try:
                        sock.send_multipart(protocol.encode_ingest(event), zmq.NOBLOCK)
                    except zmq.Again:
                        log.warning("status sample dropped: the notifier loop is behind")
                next_at += self.interval
                now = self.clock()
                if next_at < now:  # we fell behind (a slow nvidia-smi): skip, do not burst
                    next_at = now + self.interval
                self.stopped.wait(next_at - now)
        finally:
            sock.close()
