"""``lrbridge``: the command line of the person running the bridge (docs/OPERATOR.md).

``lrbridge run`` starts the bridge's processes; ``config`` and ``checkconfig``
read the settings without starting anything; every other command asks the
running gateway over HTTP and prints a table (or JSON with ``--json``).
"""
