"""Time series (epoch seconds, value) as charts draw them: drawdown, and thinning long ones."""

from __future__ import annotations

import math
from typing import Any


def drawdown_series(equity: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """% below the running peak of the balance, at each point of ``equity``."""
    peak, out = -math.inf, []
    for when, value in equity:
        peak = max(peak, value)
        out.append((when, (value - peak) / peak * 100 if peak > 0 else 0.0))
    return out


def thin(points: list[tuple[float, float]], buckets: int) -> list[tuple[float, float]]:
    """At most 4 points per bucket of time (first, lowest, highest, last), so a long series
    keeps its shape, peaks and troughs included, at a bounded size."""
    if len(points) <= buckets * 4:
        return points
    import numpy as np

    arr = np.asarray(points, dtype=float)
    return thin_arrays(arr[:, 0], arr[:, 1], buckets)


def thin_arrays(times: Any, values: Any, buckets: int) -> list[tuple[float, float]]:
    """``thin`` of a series given as two numpy arrays, times ascending."""
    import numpy as np

    span = float(times[-1] - times[0]) or 1.0
    bucket = np.minimum(((times - times[0]) / span * buckets).astype(np.int64), buckets - 1)
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(times)] - 1
    by_value = np.lexsort((values, bucket))  # within each bucket (same positions), lowest first
    keep = np.unique(np.concatenate([starts, ends, by_value[starts], by_value[ends]]))
    return list(zip(times[keep].tolist(), values[keep].tolist(), strict=True))
