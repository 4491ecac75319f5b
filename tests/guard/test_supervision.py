"""How a worker's end is named: a SIGKILL is memory only when memory was near the limit."""

from __future__ import annotations

import signal

from strategy_runner.errors import BacktestError, MemoryLimitExceeded
from strategy_runner.guard.memory import MemoryLimit, MemoryWatch
from strategy_runner.guard.supervision import worker_exit_error


def watch(limit_mb: int, peak_mb: float) -> MemoryWatch:
    w = MemoryWatch(MemoryLimit(limit_mb, "MEMORY_LIMIT_MB"), 90.0, 1)
    w.peak_mb = w.last_mb = peak_mb
    return w


def test_sigkill_near_the_limit_is_memory():
    error = worker_exit_error(-signal.SIGKILL, {"phase": "backtest"}, watch(2048, 1900), None)
    assert isinstance(error, MemoryLimitExceeded) and "out-of-memory killer" in str(error)


def test_sigkill_far_below_the_limit_is_not_memory():
    error = worker_exit_error(-signal.SIGKILL, {"phase": "backtest"}, watch(24105, 513), None)
    assert isinstance(error, BacktestError) and not isinstance(error, MemoryLimitExceeded)
    assert "not the out-of-memory killer" in str(error) and "513 MiB" in str(error)
