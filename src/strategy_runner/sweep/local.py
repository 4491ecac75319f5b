"""Run a sweep's items on this machine: each one `strategy-runner backtest` in its own process,
like a container, so status store, results, cache and MLflow all take part. Resumable: an item
already COMPLETED is not run again, a retryable failure is, a permanent one is reported as it is."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..settings import Settings, child_environment
from .spec import SweepItem, SweepSpec

#: Variables of the caller's environment that describe one run: each item sets its own.
PER_RUN_VARIABLES = ("RUN_ID", "TRADAI_RUN_ID", "TRACE_ID", "TASK_TOKEN", "STRATEGY", "STRATEGY_VERSION",
                     "PAIRS", "TIMERANGE", "TIMEFRAME", "STRATEGY_PARAMETERS", "SWEEP_ID")


def default_jobs(spec: SweepSpec, settings: Settings) -> int:
    """As many items at once as the cores allow and the memory estimate of the largest item fits."""
    from ..guard.estimate import estimate_peak
    from ..guard.memory import discover_limit

    limit = discover_limit(settings.memory_limit_mb).mb
    largest = max(spec.items, key=lambda i: (len(i.pairs), i.timerange))
    try:
        need = estimate_peak(largest.pairs, largest.timeframe or "5m", largest.timerange, "spot", settings.data_dir).mb
    except Exception:  # noqa: BLE001 - an estimate that cannot be made leaves the cores as the bound
        need = 0.0
    by_memory = int(limit * 0.8 // need) if need else os.cpu_count() or 1
    return max(1, min(os.cpu_count() or 1, by_memory, len(spec.items)))


def run_items(spec: SweepSpec, settings: Settings, *, jobs: int, timeout: float,
              report: Callable[[SweepItem, dict[str, Any], float, bool], None]) -> list[dict[str, Any]]:
    """Every item's status item once the sweep is done (None for an item that left none)."""
    from ..adapters import status_store

    store = status_store(settings)
    logs = settings.runs_dir / spec.sweep_id / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    def one(item: SweepItem) -> dict[str, Any]:
        recorded = store.get(item.run_id) or {}
        if recorded.get("status") == "COMPLETED" or (recorded.get("status") == "FAILED" and not recorded.get("retryable")):
            report(item, recorded, 0.0, True)
            return recorded
        started = time.monotonic()
        env = child_environment({**item.environment(), "RUNS_DIR": str(settings.runs_dir)}, drop=PER_RUN_VARIABLES)
        with open(logs / f"{item.run_id}.out", "w") as out:
            try:
                subprocess.run([sys.executable, "-m", "strategy_runner", "backtest"], env=env, stdout=out,
                               stderr=subprocess.STDOUT, timeout=timeout, check=False)
            except subprocess.TimeoutExpired:
                pass  # the run's own status says what happened; a missing one is reported below
        recorded = store.get(item.run_id) or {"run_id": item.run_id, "status": "FAILED", "error_type": "SweepItemTimeout",
                                                 "error_message": f"no status after {timeout:.0f} s; see {out.name}"}
        report(item, recorded, time.monotonic() - started, False)
        return recorded

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, spec.items))
