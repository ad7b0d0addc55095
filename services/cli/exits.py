"""Exit codes of every ``lrbridge`` command (docs/OPERATOR.md lists them)."""

OK = 0  # done; for ``status``: the bridge is healthy
FAILED = 1  # the bridge refused the request, or ``status`` found it degraded, or a process died
USAGE = 2  # bad command line (argparse's own code too), or a bad setting (named on its own line)
NOT_RUNNING = 3  # nothing answers at the address, or the gateway cannot reach its hub
UNSUPPORTED = 4  # the running bridge (or this installation) lacks what this command needs
ALREADY_RUNNING = 5  # ``run``: a bridge already answers at the gateway's address; nothing was started
PORT_TAKEN = 6  # ``run``: another program holds a port the bridge needs; nothing was started
