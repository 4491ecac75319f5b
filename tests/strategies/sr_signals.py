"""Helper module of HelperSignals (imported from the strategies directory)."""

FAST = 12
SLOW = 48


def crossed(a, b):
    return (a > b) & (a.shift(1) <= b.shift(1))
