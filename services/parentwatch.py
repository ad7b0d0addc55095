"""No orphans: a process the bridge starts stops when the process that started it is gone.

A parent that dies by SIGKILL (or a crash) cannot stop its children, and
they would keep serving and holding their ports with parent 1. Each child
therefore watches its parent: a thread asks ``os.getppid()`` every
``INTERVAL`` seconds, and once the answer is no longer the parent it started
with (the child was reparented), it stops itself as SIGTERM would stop it
(``on_orphan``: the service's own stop, else a SIGTERM to itself).
Polling works the same on Linux, macOS and Windows (Linux's
``PR_SET_PDEATHSIG`` has no macOS counterpart).

Who watches whom:

- a gunicorn worker watches its master (services/gateway/worker.py);
- a process started by ``lrbridge run`` (hub, notifier, gunicorn master, or the
  gateway under uvicorn alone) watches ``lrbridge run``, which names itself in
  ``BRIDGE_PARENT_PID``; under ``make run`` honcho is named the same way (the
  Makefile sets the variable to the shell that ``exec``s honcho). Started any
  other way (a shell, a service manager) a process has no such variable and
  outlives its parent as it always did.
"""

import logging
import os
import signal
import threading
import time

log = logging.getLogger(__name__)

ENV = "BRIDGE_PARENT_PID"
INTERVAL = 0.5  # seconds between two looks at the parent


def stop_self():
    """Ask this process to stop the way SIGTERM does (its own handler runs, in the main thread)."""
    if hasattr(signal, "pthread_kill"):
        signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)
    else:  # pragma: no cover - Windows: SIGTERM through os.kill ends the process
        os.kill(os.getpid(), signal.SIGTERM)


def _alive(pid):
    """POSIX: whether process ``pid`` exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def watch(parent, on_orphan=stop_self, interval=INTERVAL, name="process"):
    """Call ``on_orphan()`` once, from a daemon thread, when this process's parent is no longer ``parent``.

    Returns the thread. A parent already gone when the watch starts counts as gone.

    ``parent`` may also be a grandparent: a process manager that starts each
    command through ``sh -c`` (honcho, under ``make run``) names itself, and a
    shell that did not ``exec`` the command sits in between. Then (on POSIX)
    the watch also ends when ``parent`` no longer exists, or when this
    process's own parent changes.
    """
    first = os.getppid()
    through_shell = first != parent and os.name == "posix" and _alive(parent)

    def run():
        while True:
            time.sleep(interval)
            now = os.getppid()
            if through_shell:
                gone = now != first or not _alive(parent)
            else:
                gone = now != parent
            if gone:
                log.warning("%s: parent %s is gone (parent now %s): stopping", name, parent, now)
                on_orphan()
                return

    thread = threading.Thread(target=run, name="parent-watch", daemon=True)
    thread.start()
    return thread


def watch_from_env(environ=os.environ, on_orphan=stop_self, name="process"):
    """``watch`` the parent named by ``BRIDGE_PARENT_PID``, if set; returns the thread or ``None``."""
    raw = environ.get(ENV, "").strip()
    if not raw:
        return None
    try:
        parent = int(raw)
    except ValueError:
        log.warning("%s=%r is not a process id: not watching the parent", ENV, raw)
        return None
    return watch(parent, on_orphan, name=name)
