"""Exit codes of every ``bridge`` command (docs/OPERATOR.md lists them)."""

OK = 0  # done; for ``status``: the bridge is healthy
FAILED = 1  # the bridge refused the request, or ``status`` found it degraded, or a process died
USAGE = 2  # bad command line (argparse's own code too)
NOT_RUNNING = 3  # nothing answers at the address, or the gateway cannot reach its hub
UNSUPPORTED = 4  # the running bridge lacks the route this command needs
