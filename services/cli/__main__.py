"""``lrbridge``: run the bridge, and ask it what is connected and flowing (docs/OPERATOR.md)."""

import argparse
import os
import sys

from services.cli import calls, commands, exits, offline, run, tail
from services.cli.http import ApiError, Bridge, NotRunning, default_address, default_host, default_port
from services.settings import ConfigError

PROG = "lrbridge"
EPILOG = (
    "exit codes: 0 done (status: healthy), 1 refused by the bridge (status: degraded), "
    "2 bad command line or setting, 3 nothing answers / hub down, 4 the bridge lacks this route, "
    "5 run: a bridge is already running, 6 run: a port is taken by another program"
)
FALLBACK_ADDRESS = ("127.0.0.1", 5100)  # only shown in --help when BRIDGE_HTTP_* are bad


def version():
    """The package's version: pyproject.toml's in a checkout, else the installed metadata."""
    from services.plugin_package import PackageError, package_version

    try:
        return package_version()
    except PackageError:
        return "(unknown version)"


def build_parser(environ=os.environ):
    """The ``lrbridge`` command line: one sub-command per task, each with --help."""
    try:
        host, port = default_address(environ)
    except ConfigError:
        host, port = FALLBACK_ADDRESS
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--host", help=f"gateway address (BRIDGE_HTTP_HOST; now {host})")
    common.add_argument("--port", type=int, help=f"gateway port (BRIDGE_HTTP_PORT; now {port})")
    common.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer (default 10)")
    common.add_argument("--json", action="store_true", help="print JSON for scripts instead of a table")
    local = argparse.ArgumentParser(add_help=False)
    local.add_argument("--json", action="store_true", help="print JSON for scripts")

    parser = argparse.ArgumentParser(
        prog=PROG, description="Run the Lightroom bridge and see what is connected and flowing.", epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name, func, help_text, parents=(common,), offline_func=None):
        p = sub.add_parser(name, parents=list(parents), help=help_text, description=help_text, epilog=EPILOG)
        p.set_defaults(func=func, offline=offline_func)
        return p

    p = add("run", run.run, "start hub, notifier and gateway together (Ctrl-C stops them all)")
    p.add_argument("--platform", choices=("auto", "posix", "windows"), default="auto",
                   help="posix: gunicorn gateway (the Procfile); windows: uvicorn gateway; auto: by this system")
    p.add_argument("--only", action="append", metavar="NAME", help="start only this process (repeatable)")
    add("config", None, "print the folders (state, logs, keys) and every service's effective settings",
        (local,), offline.config)
    add("checkconfig", None, "check every setting without starting anything (exit 0 good, 2 bad)",
        (local,), offline.checkconfig)
    p = add("plugin", None, "build the Lightroom plug-in's zip (LightroomBridge-<version>.lrplugin.zip)",
            (), offline.plugin)
    p.add_argument("dest", nargs="?", default="dist", help="folder to write it to (default: ./dist)")
    add("status", commands.status, "health of gateway, hub and notifier, with a summary")
    add("clients", commands.clients, "connected clients: type, transport, queue, dropped, last activity")
    add("jobs", commands.jobs, "jobs the bridge knows of, with their progress")
    p = add("broadcast", commands.broadcast, "send a message to every client, or to one channel's subscribers")
    p.add_argument("--channel", help="only to this channel's subscribers (e.g. jobs)")
    p.add_argument("message", help='the message as JSON, e.g. \'{"type": "notice", "text": "hello"}\'')
    p = add("send", commands.send, "send a message to one client")
    p.add_argument("client_id", help="the client's id (see `lrbridge clients`)")
    p.add_argument("message", help='the message as JSON, e.g. \'{"type": "reload_config"}\'')
    p = add("tail", tail.tail, "print messages live as they flow (as a client of type cli)")
    p.add_argument("--channel", action="append", metavar="C",
                   help=f"channel to follow (repeatable; default: {', '.join(tail.DEFAULT_TAIL_CHANNELS)})")
    p.add_argument("--count", type=int, default=0, help="stop after this many messages")
    p = add("cleanup", commands.cleanup, "remove clients that stopped polling")
    p.add_argument("--minutes", type=float, help="idle longer than this (default: BRIDGE_STALE_SECONDS)")
    p = add("call", calls.call, "run an action on a client and print its result (docs/BACKENDS.md)")
    p.add_argument("client", help="the client's id, or a client type (lightroom: the one heard from last)")
    p.add_argument("action", help="the action the plug-in registered, e.g. ping")
    p.add_argument("params", nargs="?", default="{}", help='its parameters as JSON (default {}), e.g. \'{"n": 1}\'')
    p.add_argument("--within", type=float, default=30.0, help="the command's deadline in seconds (default 30)")
    p.add_argument("--no-wait", action="store_true", help="print the command id at once instead of the result")
    add("commands", calls.commands, "pending and recent commands: state, caller, client, duration")
    p = add("dashboard", commands.dashboard, "print the dashboard's address and open it in the browser")
    p.add_argument("--no-open", action="store_true", help="only print the address")
    return parser


def address(args, environ=os.environ):
    """``(host, port)``: --host/--port, else BRIDGE_HTTP_HOST/PORT (``ConfigError`` when those are bad)."""
    host = default_host(environ) if args.host is None else args.host
    return host, (default_port(environ) if args.port is None else args.port)


def main(argv=None, out=None, environ=os.environ):
    """Run one command; returns its exit code (see EPILOG)."""
    out = out or sys.stdout
    args = build_parser(environ).parse_args(argv)
    try:
        if args.offline is not None:
            return args.offline(args, out, environ)
        if args.func is run.run:
            return run.run(args, out, environ)
    except BrokenPipeError:  # `lrbridge config | head`
        return exits.OK
    try:
        host, port = address(args, environ)
    except ConfigError as ex:  # never talk to some default port instead of the one asked for
        print(f"{PROG}: {ex}", file=sys.stderr)
        return exits.USAGE
    bridge = Bridge(host, port, environ.get("BRIDGE_ADMIN_TOKEN") or None, timeout=args.timeout)
    try:
        return args.func(args, bridge, out)
    except NotRunning:
        print(f"{PROG}: nothing answers at {bridge.address} — start it with `lrbridge run`", file=sys.stderr)
        return exits.NOT_RUNNING
    except ApiError as ex:
        if ex.code == "hub_unavailable":
            print(f"{PROG}: the gateway at {bridge.address} cannot reach its hub: {ex}", file=sys.stderr)
            return exits.NOT_RUNNING
        if ex.status == 401:
            print(f"{PROG}: the bridge wants the admin token: set BRIDGE_ADMIN_TOKEN", file=sys.stderr)
            return exits.FAILED
        print(f"{PROG}: {ex} ({ex.code})", file=sys.stderr)
        return exits.FAILED
    except ValueError as ex:  # a message argument that is not a JSON object with a type
        print(f"{PROG} {args.command}: {ex}", file=sys.stderr)
        return exits.USAGE
    except KeyboardInterrupt:
        return exits.OK
    except BrokenPipeError:  # `lrbridge tail | head`
        return exits.OK


if __name__ == "__main__":
    sys.exit(main())
