"""What the supervisor asks of the guards: the memory pre-flight and naming how a worker ended.

Kept out of runner.py so the lifecycle reads as a sequence of steps.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

from .. import identity, logs
from ..engine.config import effective_config, planned_timeframe, read_json
from ..errors import BacktestError, DiskFullError, MemoryLimitExceeded, RunnerError
from ..settings import Settings
from . import estimate as est
from .memory import MemoryWatch, discover_limit

log = logs.get_logger("strategy_runner.guard")

#: Seconds a worker stopped for memory gets before SIGKILL: it is still growing.
MEMORY_STOP_GRACE_SECONDS = 2.0
#: A SIGKILL is blamed on memory only when the last samples came this close to the limit
#: (sampled 4x a second, growth between samples is bounded; far below it, it was someone else).
OOM_SUSPECT_SHARE = 0.75
#: Below this much free space a disk counts as full (ENOSPC is what the writer saw).
DISK_FULL_BYTES = 1 << 20


def memory_preflight(settings: Settings, overlay_path: Path | None = None, beside_mb: float = 0.0) -> MemoryWatch:
    """Discover the limit, estimate the run's peak, refuse a run that clearly cannot fit.
    ``beside_mb``: what a tracking process holds beside the worker's start-up.

    Raises MemoryLimitExceeded with the estimate, the limit and what to change. Nothing
    but candle file dates is read, so this takes milliseconds.
    """
    limit = discover_limit(
        settings.memory_limit_mb, ecs_task=lambda: identity.ecs_task_metadata(settings.ecs_metadata_uri)
    )
    watch = MemoryWatch(limit, settings.memory_soft_limit_pct, os.getpid())
    base = read_json(settings.config_path, "config")
    overlay = read_json(overlay_path, "config overlay") if overlay_path and overlay_path.exists() else None
    config = effective_config(base, overlay, strategy=settings.strategy, timeframe=settings.timeframe,
                              timerange=settings.timerange, pairs=settings.pairs)
    timeframe = planned_timeframe(config, settings.strategies_dir, settings.strategy)
    guess = est.estimate_peak(config["exchange"]["pair_whitelist"], timeframe, settings.timerange,
                              config.get("trading_mode", "spot"), settings.data_dir,
                              timeframe_detail=config.get("timeframe_detail"),
                              data_format=config.get("dataformat_ohlcv", "feather"), beside_mb=beside_mb)
    log.info("memory limit", limit_mb=limit.mb, source=limit.source, soft_limit_mb=round(watch.soft_mb),
             estimate_mb=round(guess.mb), pair_years=round(guess.pair_years, 2))
    if est.refuses(guess, limit.mb):
        raise MemoryLimitExceeded(
            f"this run needs an estimated {guess.describe()}, more than the memory limit of {limit.mb} MiB "
            f"({limit.source}); refused before loading any data. To fit: {est.advice(guess, watch.soft_mb)}"
        )
    if guess.mb > watch.soft_mb:
        log.warning("the estimate is above the soft limit; the runtime guard will stop the run if it grows past it",
                    estimate_mb=round(guess.mb), soft_limit_mb=round(watch.soft_mb))
    return watch


def describe_phase(progress: dict[str, Any] | None) -> str:
    """The phase the worker last reported, in words an operator can use."""
    if not progress or not progress.get("phase"):
        return "start-up (before the worker reported any progress: imports, config, strategy loading)"
    fraction = progress.get("fraction")
    pct = f" {float(fraction) * 100:.0f}%" if isinstance(fraction, (int, float)) else ""
    return f"{progress['phase']}{pct}"


def memory_exceeded(watch: MemoryWatch, progress: dict[str, Any] | None) -> MemoryLimitExceeded:
    """The runtime guard's verdict, made when the soft limit is passed."""
    return MemoryLimitExceeded(
        f"memory reached {watch.last_mb:.0f} MiB (peak {watch.peak_mb:.0f} MiB), past the {watch.describe_limit()}, "
        f"during phase {describe_phase(progress)}; the worker was stopped before the kernel would kill it. "
        f"Run fewer pairs or a shorter range, or give the task more memory"
    )


def worker_exit_error(
    returncode: int, progress: dict[str, Any] | None, watch: MemoryWatch | None, log_tail: str | None
) -> RunnerError:
    """A worker that ended without outcome.json: name what happened from what is known."""
    phase = describe_phase(progress)
    peak = f"peak memory seen {watch.peak_mb:.0f} MiB against the {watch.describe_limit()}" if watch else "peak unknown"
    if returncode == -signal.SIGKILL and watch is not None and watch.peak_mb < OOM_SUSPECT_SHARE * watch.limit.mb:
        error: RunnerError = BacktestError(
            f"the worker was killed by SIGKILL from outside the runner during phase {phase}; {peak}, far below "
            f"it, so not the out-of-memory killer: something else killed the process (an operator, a "
            f"debugger, the host)"
        )
    elif returncode == -signal.SIGKILL:
        error = MemoryLimitExceeded(
            f"the worker was killed by SIGKILL from outside the runner during phase {phase}; {peak}. "
            f"This is what the kernel's out-of-memory killer does (memory sampled 4x a second can miss the "
            f"last spike): give the task more memory or run fewer pairs or a shorter range"
        )
    elif returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        error = BacktestError(f"the worker died from signal {name} during phase {phase}; {peak}")
    elif returncode == 0:
        error = BacktestError(
            f"the worker exited with code 0 during phase {phase} without reporting a result (something in the "
            f"strategy or a library ended the process early, e.g. os._exit or sys.exit); this is a failure"
        )
    else:
        error = BacktestError(f"the worker exited with code {returncode} during phase {phase} and reported no result")
    error.traceback_tail = log_tail  # type: ignore[attr-defined]
    return error


def disk_full(*paths: Path) -> DiskFullError | None:
    """DiskFullError naming the first of ``paths`` whose file system is (nearly) full."""
    import shutil

    for path in paths:
        try:
            free = shutil.disk_usage(path).free
        except OSError:
            continue
        if free < DISK_FULL_BYTES:
            return DiskFullError(f"the disk holding {path} is full ({free} bytes free, ENOSPC): free space or "
                                 f"give the task more ephemeral storage, then rerun")
    return None


def worker_log_tail(run_log: Path, lines: int = 12) -> str | None:
    """The last lines the worker logged (run.log is JSON lines from both processes)."""
    try:
        with open(run_log, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 256 * 1024))
            raw = fh.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return None
    picked = []
    for line in raw:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("process") == "worker":
            picked.append(f"{record.get('level', '')}: {record.get('event', '')}")
    return "\n".join(picked[-lines:]) or None
