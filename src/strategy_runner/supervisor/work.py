"""Phase 2: the backtest itself, in a worker process, while the supervisor heartbeats,
watches memory and signals, and opens the MLflow run alongside.

Freqtrade and MLflow are never imported here, so a dying backtest cannot take the
lifecycle with it.
"""

from __future__ import annotations

import contextvars
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..artifacts.base import SUMMARY
from ..errors import BacktestError, Cancelled, LeaseLost, MemoryLimitExceeded, SpotInterrupted, error_from_name
from ..guard.supervision import (
    MEMORY_STOP_GRACE_SECONDS,
    disk_full,
    memory_exceeded,
    memory_preflight,
    worker_exit_error,
    worker_log_tail,
)
from ..heartbeat.base import HeartbeatLoop
from ..settings import worker_environment
from ..status.base import now_iso
from ..worker import OUTCOME, OVERLAY, PROGRESS, WORK
from .attempt import Attempt, log, safe

#: Seconds a worker gets to stop after SIGTERM before it is killed (ECS allows 30 in all).
STOP_GRACE_SECONDS = 10.0


def run(attempt: Attempt) -> BaseException | None:
    """Everything between the claim and the outcome; the error that ended it, or None."""
    s = attempt.settings
    error: BaseException | None = None
    try:
        # Heartbeats from the claim on: tracking and fetching count against HeartbeatSeconds too.
        with HeartbeatLoop(s.heartbeat_interval_seconds, lambda: beat(attempt), lambda e: beat_failed(attempt, e)):
            # Opening the MLflow run takes seconds (its own process, bounded by a deadline):
            # do it while the backtest starts instead of before.
            tracking = threading.Thread(target=contextvars.copy_context().run, args=(start_tracking, attempt),
                                        name="tracking-start", daemon=True)  # keeps run_id on its logs
            tracking.start()
            try:
                prepare(attempt)
                if attempt.cache.reuse():
                    attempt.progress = {"phase": "cached", "fraction": 1.0}
                else:
                    run_worker(attempt)
                    attempt.cache.note_computed()
            except BaseException:
                # A stop or a refusal never waits for the tracking start.
                safe(getattr(attempt.adapters.tracker, "cancel_start", lambda: None))
                raise
            finally:
                tracking.join()
    except BaseException as exc:  # noqa: BLE001 - every way out ends in a terminal status
        error = exc
    return error


def start_tracking(attempt: Attempt) -> None:
    attempt.mlflow_run_id = safe(attempt.adapters.tracker.start)
    if attempt.mlflow_run_id:
        safe(attempt.adapters.status.touch, attempt.settings.run_id, owner=attempt.owner,
             fields={"mlflow_run_id": attempt.mlflow_run_id})


def prepare(attempt: Attempt) -> None:
    """Fetch what the worker needs that is not on disk yet (S3 config overlay, data)."""
    s = attempt.settings
    from ..s3_inputs import needs_fetch, prepare_inputs

    if needs_fetch(s):
        from .. import aws

        prepare_inputs(s, aws.client(s, "s3"))


def run_worker(attempt: Attempt) -> None:
    """The worker, started again once when it names files to fetch from DATA_S3_PATH that only
    the loaded strategy could tell (informative pairs, timeframe_detail)."""
    fetch = start_worker(attempt)
    if fetch:
        from .. import aws
        from ..engine.data import CandleFile
        from ..s3_inputs import fetch_data

        files = [CandleFile(f["pair"], f["timeframe"], f["candle_type"], f["file"], f["role"]) for f in fetch]
        log.info("fetching what the strategy reads besides its main candles", files=[f.relpath for f in files])
        fetch_data(aws.client(attempt.settings, "s3"), attempt.settings.data_s3_path, attempt.settings.data_dir, files)
        if start_worker(attempt):
            raise BacktestError("the worker still names files to fetch after they were fetched")


def start_worker(attempt: Attempt) -> list[dict[str, Any]] | None:
    """One worker to its end; the files it asks for, when it asks (else None)."""
    run_dir = attempt.run_dir
    work = run_dir / WORK
    work.mkdir(parents=True, exist_ok=True)
    for stale in (OUTCOME, PROGRESS):
        (work / stale).unlink(missing_ok=True)
    (run_dir / SUMMARY).unlink(missing_ok=True)
    if attempt.stop_reason is not None:  # a signal arrived before the worker started
        raise attempt.stop_reason
    full = disk_full(run_dir)  # a worker on a full disk could not even report its outcome
    if full is not None:
        raise full
    attempt.memory = memory_preflight(attempt.settings, work / OVERLAY,
                                      beside_mb=attempt.adapters.tracker.start_memory_mb())
    env = worker_environment(attempt.settings)
    proc = attempt.warm.go(env) if attempt.warm else None
    warm = proc is not None
    proc = proc or subprocess.Popen([sys.executable, "-m", "strategy_runner.worker"], env=env)
    log.info("worker started", pid=proc.pid, warm=warm)
    signalled_at: float | None = None
    while not _exited(proc, 0.25):
        if attempt.stopped.is_set() and signalled_at is None:
            signalled_at = time.monotonic()
            proc.send_signal(signal.SIGTERM)
        # A worker over its memory is still growing: it gets a shorter grace.
        grace = MEMORY_STOP_GRACE_SECONDS if isinstance(attempt.stop_reason, MemoryLimitExceeded) else STOP_GRACE_SECONDS
        if signalled_at is not None and time.monotonic() - signalled_at > grace:
            proc.kill()
        sample(attempt)
    sample(attempt)
    outcome = _read_json(work / OUTCOME)
    if attempt.stop_reason is not None:
        log.info("worker stopped", returncode=proc.returncode, peak_memory_mb=attempt.peak_memory_mb,
                 seconds_after_stop=round(time.monotonic() - signalled_at, 3) if signalled_at else None)
        raise attempt.stop_reason
    if outcome is None:
        raise disk_full(run_dir) or worker_exit_error(proc.returncode, attempt.progress, attempt.memory,
                                                      worker_log_tail(run_dir / "run.log"))
    if not outcome.get("ok") and outcome.get("fetch") and attempt.settings.data_s3_path:
        return outcome["fetch"]
    if not outcome.get("ok"):
        if "[Errno 28]" in str(outcome.get("error_message", "")):
            raise disk_full(run_dir, attempt.settings.data_dir) or error_from_name("DiskFullError",
                                                                                   outcome["error_message"])
        error = error_from_name(outcome.get("error_type", ""), outcome.get("error_message", ""))
        error.traceback_tail = outcome.get("traceback_tail")  # type: ignore[attr-defined]
        raise error
    if not (run_dir / SUMMARY).exists():
        raise BacktestError("the worker reported success but wrote no backtest-result.json")
    return None


def _exited(proc: subprocess.Popen, seconds: float) -> bool:
    """Wait up to ``seconds`` for the worker: its end is seen at once, not at the next tick."""
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


def sample(attempt: Attempt) -> None:
    progress = _read_json(attempt.run_dir / WORK / PROGRESS)
    if progress:
        attempt.progress = attempt.progress_reporter.update(progress)
    if attempt.memory is not None:
        attempt.memory.sample()
        attempt.peak_memory_mb = round(attempt.memory.peak_mb, 1)
        if attempt.memory.over() and attempt.stop_reason is None:
            attempt.request_stop(memory_exceeded(attempt.memory, attempt.progress))


# --- heartbeats and signals -----------------------------------------------------------------

def beat(attempt: Attempt) -> None:
    """The item and the orchestrator: the orchestrator hears from us even when the store does not."""
    fields = {"heartbeat_at": now_iso(), "progress": attempt.progress or None, "peak_memory_mb": attempt.peak_memory_mb}
    try:
        owned = attempt.adapters.status.touch(attempt.settings.run_id, owner=attempt.owner, fields=fields)
    finally:
        attempt.adapters.orchestrator.heartbeat()
    if not owned:
        attempt.request_stop(LeaseLost(
            f"run {attempt.settings.run_id}: the status item no longer names this attempt ({attempt.owner}) as "
            "owner (reaped after a missed lease, or taken over by another attempt); stopping"))


def beat_failed(attempt: Attempt, exc: Exception) -> bool:
    if isinstance(exc, Cancelled):
        attempt.request_stop(exc)
        return False
    log.warning("heartbeat failed; will retry", error=str(exc))
    return True


def install_signal_handlers(attempt: Attempt) -> None:
    def on_signal(signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if attempt.stop_reason is not None:  # ECS may repeat SIGTERM; the stop is already under way
            log.info("signal ignored: already stopping", signal=name, reason=attempt.stop_reason.error_name)
            return
        attempt.request_stop(SpotInterrupted(f"{name} received (Spot interruption or StopTask); retry the run"))

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
