"""The bridge's processes, declared once: ``lrbridge run`` starts them and the Procfile is written from them.

The table ships inside the package, so an installed ``lrbridge`` needs no
checkout. ``make run`` (honcho) and the test harness read the Procfile,
which ``python -m services.procfile [PATH]`` writes from this table; a test
checks that the two agree.
"""

import sys
from pathlib import Path

# name, command: "python" is the interpreter that runs lrbridge; the gateway's
# gunicorn line becomes uvicorn alone on Windows (services/cli/run.py).
PROCESSES = (
    ("hub", "python -m services.hub"),
    ("notifier", "python -m services.notifier"),
    ("gateway", "gunicorn --config python:services.gateway.gunicorn_conf services.gateway.asgi:app"),
)

HEADER = "# written from services/procfile.py by `python -m services.procfile Procfile`: edit the table there\n"


def commands():
    """``{name: command}`` in start order."""
    return dict(PROCESSES)


def text():
    """The Procfile's text for this table."""
    return HEADER + "".join(f"{name}: {command}\n" for name, command in PROCESSES)


def read(path):
    """``{name: command}`` from a Procfile, in file order (comments and blank lines skipped)."""
    found = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, command = line.partition(":")
            found[name.strip()] = command.strip()
    return found


def main(argv=sys.argv[1:]):
    """``python -m services.procfile [PATH]``: write the Procfile (to stdout without PATH)."""
    if argv:
        Path(argv[0]).write_text(text())
    else:
        sys.stdout.write(text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
