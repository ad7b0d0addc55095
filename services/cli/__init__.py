"""``bridge``: the command line of the person running the bridge (docs/OPERATOR.md).

``bridge run`` starts the Procfile's processes; every other command asks the
running gateway over HTTP and prints a table (or JSON with ``--json``).
"""
