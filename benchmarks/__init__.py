"""The bridge's benchmark suite: ``make bench`` (python -m benchmarks) and ``make bench-compare``.

See docs/PERFORMANCE.md for the scenarios, the targets and how to read the table.
"""


def payload(i, t):
    """The benchmark message: its index and the sender's monotonic send time."""
    return {"type": "bench", "i": i, "t": t}
