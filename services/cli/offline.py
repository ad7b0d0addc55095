"""The commands that need no running bridge: config, checkconfig, plugin.

Each takes the parsed arguments and an output stream and returns an exit code.
"""

import importlib.util
import json
import os
import sys

from services import paths
from services.cli import checks, exits

PLUGIN_BUILDER = "services.plugin_package"


def _problems_out(problems, err):
    for line in problems:
        print(f"lrbridge: {line}", file=err)


def config(args, out, environ=os.environ, err=None):
    """The folders (data, state, logs, keys) and the effective settings of every service; exit 2 on a bad one."""
    err = err or sys.stderr
    folders = paths.folders(environ)
    problems = checks.settings_problems(environ)
    values = checks.effective(environ)
    if args.json:
        out.write(json.dumps({"folders": folders, "settings": values, "problems": problems},
                             indent=2, sort_keys=True, default=str) + "\n")
    else:
        out.write("folders\n")
        for name, folder in folders.items():
            out.write(f"  {name:<8} {folder}\n")
        for service, fields in values.items():
            out.write(f"{service}\n")
            for field, value in fields.items():
                out.write(f"  {field:<28} {_text(value)}\n")
    _problems_out(problems, err)
    return exits.USAGE if problems else exits.OK


def _text(value):
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    return str(value)


def checkconfig(args, out, environ=os.environ, err=None):
    """Check every setting without starting anything: exit 0 when all are good, 2 (one line each) when not."""
    err = err or sys.stderr
    problems = checks.settings_problems(environ)
    if args.json:
        out.write(json.dumps({"ok": not problems, "problems": problems}, indent=2) + "\n")
    elif not problems:
        folders = paths.folders(environ)
        out.write(f"configuration OK (hub, notifier, gateway, logs): state in {folders['state']}, "
                  f"logs in {folders['logs']}\n")
    _problems_out(problems, err)
    return exits.USAGE if problems else exits.OK


def plugin(args, out, environ=os.environ, err=None):
    """Build the Lightroom plug-in's zip into DEST (default ./dist) and print its path."""
    err = err or sys.stderr
    if importlib.util.find_spec(PLUGIN_BUILDER) is None:
        print("lrbridge plugin: this installation has no plug-in builder (services/plugin_package.py)", file=err)
        return exits.UNSUPPORTED
    builder = importlib.import_module(PLUGIN_BUILDER)
    try:
        os.makedirs(args.dest, exist_ok=True)
        path = builder.build(args.dest)
    except getattr(builder, "PackageError", ()) as ex:  # e.g. no plug-in folder beside an installed package
        print(f"lrbridge plugin: {ex}", file=err)
        return exits.FAILED
    except OSError as ex:
        print(f"lrbridge plugin: cannot write to {args.dest}: {ex}", file=err)
        return exits.FAILED
    out.write(f"{os.path.abspath(path)}\n")
    return exits.OK
