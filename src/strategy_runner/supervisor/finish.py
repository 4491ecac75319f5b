"""Phase 3: results, the terminal status, the callback, tracking and the run's metrics.

Success is reported only once it is recorded: results are stored and tracked (side by side),
then the result is kept in the result cache, then COMPLETED is written (retried within a budget);
only then SendTaskSuccess. An attempt that cannot write COMPLETED fails with
StatusStoreUnavailable (retryable): its retry finds the result in the cache.

Failure: the terminal status and the callback come first (a stop must finish inside ECS's
stopTimeout); tracking follows, best effort. Exactly one callback on every way out, except
when the orchestrator itself gave up on the token (Cancelled).
"""

from __future__ import annotations

import contextvars
import json
import threading
import time
from pathlib import Path
from typing import Any

from .. import emf
from ..artifacts.base import SUMMARY, write_manifest
from ..errors import (
    Cancelled,
    LeaseLost,
    ResultsAccessError,
    ResultsUploadError,
    RunnerError,
    SpotInterrupted,
    StatusStoreError,
    StatusStoreUnavailable,
    error_name_for,
    exit_code_for,
)
from ..heartbeat.base import HeartbeatLoop
from ..lifecycle import Status
from ..status.base import TransitionRefused, now_iso
from ..worker import result_notes
from .attempt import Attempt, log, safe

HEADLINE_OUTPUT = ("profit_total", "profit_total_abs", "max_drawdown_account", "sharpe", "total_trades", "winrate")
#: The terminal write is retried for two heartbeat intervals (the orchestrator tolerates at
#: least that much silence, deploy checks), at most this long; less while stopping, which must
#: end inside ECS's stopTimeout. Each try is bounded by the store client's own timeouts.
RECORD_BUDGET_S = 30.0
RECORD_BUDGET_STOPPING_S = 10.0


def finish(attempt: Attempt, error: BaseException | None) -> int:
    # Upload and tracking can take longer than HeartbeatSeconds: keep beating until the callback.
    with HeartbeatLoop(attempt.settings.heartbeat_interval_seconds, lambda: _beat_finishing(attempt),
                       lambda e: not isinstance(e, Cancelled)):
        return _finish(attempt, error)


def _beat_finishing(attempt: Attempt) -> None:
    """While results are stored: the item is still RUNNING (touch is a no-op once it is not)."""
    try:
        attempt.adapters.status.touch(attempt.settings.run_id, owner=attempt.owner, fields={"heartbeat_at": now_iso()})
    finally:
        attempt.adapters.orchestrator.heartbeat()


def _finish(attempt: Attempt, error: BaseException | None) -> int:
    s = attempt.settings
    summary = _read_json(attempt.run_dir / SUMMARY)
    fields: dict[str, Any] = {"peak_memory_mb": attempt.peak_memory_mb, "progress": attempt.progress or None,
                              **attempt.cache.fields}
    if attempt.mlflow_run_id:
        fields["mlflow_run_id"] = attempt.mlflow_run_id
    if attempt.memory is not None:
        fields.update(memory_limit_mb=attempt.memory.limit.mb, memory_limit_source=attempt.memory.limit.source)
    if summary:
        fields["summary"] = {k: summary["metrics"].get(k) for k in HEADLINE_OUTPUT}
        fields["result_notes"] = result_notes(summary)  # warnings, data quality, timeframe (issue 12)
    tracked = {**(summary or {}), "supervisor": {"peak_memory_mb": attempt.peak_memory_mb}}
    if error is not None:
        return _fail(attempt, error, fields, tracked, tracked_done=False)
    results_uri = upload_s = None
    tracking: Background | None = None
    try:
        write_manifest(attempt.run_dir)
        # MLflow's finish (its own copy of the files) goes on while the results are stored.
        tracking = Background(attempt.adapters.tracker.finish, "FINISHED", tracked, attempt.run_dir)
        upload_started = time.monotonic()
        results_uri = attempt.adapters.artifacts.publish(attempt.run_dir, s.run_id)
        upload_s = round(time.monotonic() - upload_started, 3)
    except (ResultsUploadError, ResultsAccessError) as exc:
        error = exc
    except OSError as exc:
        error = _os_error(attempt, exc)
    except Exception as exc:  # noqa: BLE001
        error = ResultsUploadError(f"storing results failed: {exc}")
    tracking_error = tracking.result() if tracking is not None else None
    if error is not None:  # the MLflow run is closed FAILED over whatever the finish above set
        return _fail(attempt, error, fields, tracked, tracked_done=False)
    error = _complete(attempt, fields, results_uri, upload_s, tracking_error)
    if error is None:
        return 0
    # The results are stored and the MLflow run closed FINISHED; only the write failed.
    fields["results_uri"] = results_uri
    return _fail(attempt, error, fields, tracked, tracked_done=True)


class Background:
    """``fn(*args)`` in a thread (run_id and trace_id kept on its logs); ``result()`` joins it.
    ``safe`` inside: a failure is logged and the result is None, as for any side effect."""

    def __init__(self, fn: Any, *args: Any):
        self._result: Any = None

        def run() -> None:
            self._result = safe(fn, *args)

        self._thread = threading.Thread(target=contextvars.copy_context().run, args=(run,), daemon=True,
                                        name=getattr(fn, "__qualname__", "background"))
        self._thread.start()

    def result(self) -> Any:
        self._thread.join()
        return self._result


def _complete(attempt: Attempt, fields: dict[str, Any], results_uri: str | None, upload_s: float | None,
              tracking_error: str | None) -> RunnerError | None:
    if tracking_error:
        fields["tracking_error"] = tracking_error
    safe(attempt.cache.store)  # before COMPLETED: a retry that finds the item RUNNING reuses it
    try:
        item = record(attempt, Status.COMPLETED, {**fields, "results_uri": results_uri})
    except StatusStoreError as exc:  # not recorded, so not a success: the retry reports it
        return exc
    except TransitionRefused as exc:
        return LeaseLost(f"the result is stored ({results_uri}) but COMPLETED could not be written: {exc}")
    log.info("run completed", results_uri=results_uri, mlflow_run_id=attempt.mlflow_run_id, upload_s=upload_s)
    safe(attempt.adapters.orchestrator.succeed, callback_output(item))
    _emit_metrics(attempt, Status.COMPLETED, None)
    print_done(item, attempt.run_dir)
    return None


def _fail(attempt: Attempt, error: BaseException, fields: dict[str, Any], tracked: dict[str, Any],
          tracked_done: bool) -> int:
    status = Status(getattr(error, "terminal_status", "FAILED"))
    name = error_name_for(error)
    message = str(error) or type(error).__name__
    interrupted = status == Status.CANCELLED or isinstance(error, SpotInterrupted)
    fields.update(error_type=name, error_message=message, retryable=bool(getattr(error, "retryable", False)),
                  traceback_tail=getattr(error, "traceback_tail", None))
    terms = error.log_terms if isinstance(error, RunnerError) else "ERROR Exception"
    log.error("run failed", error_type=name, error=message, alert=f"{terms}: {name}")
    store_down = isinstance(error, StatusStoreError)
    # Whatever exists (logs, partial results) is kept; upload it best effort. Not when S3 just
    # failed, nor when the run now belongs to another attempt (its results share the prefix).
    if not (tracked_done or isinstance(error, (ResultsUploadError, ResultsAccessError, LeaseLost))):
        fields["results_uri"] = safe(_publish_partial, attempt)
    if not store_down and not isinstance(error, LeaseLost):  # LeaseLost: the item is someone else's now
        try:
            record(attempt, status, fields)
        except (StatusStoreError, TransitionRefused) as exc:
            # The callback and exit code still report the outcome; a retry or `reap` ends the item.
            log.error("could not record the outcome in the status store", error=str(exc), status=status.value)
    if not isinstance(error, Cancelled):
        safe(attempt.adapters.orchestrator.fail, name, message)  # a cancelled token takes no callbacks
    if not tracked_done:
        tracking_status = "KILLED" if interrupted else "FAILED"
        tracked["error"] = {"error_type": name, "error_message": message[:4000]}
        safe(attempt.adapters.tracker.finish, tracking_status, tracked, attempt.run_dir)
    _emit_metrics(attempt, status, name)
    return exit_code_for(error)


def record(attempt: Attempt, status: Status, fields: dict[str, Any]) -> dict[str, Any]:
    """The terminal write, retried while the store is unreachable, within a budget.
    Raises StatusStoreError (permanent, or the last transient one) or TransitionRefused."""
    stopping = isinstance(attempt.stop_reason, SpotInterrupted)
    budget = min(RECORD_BUDGET_STOPPING_S if stopping else RECORD_BUDGET_S,
                 2 * attempt.settings.heartbeat_interval_seconds)
    deadline = time.monotonic() + budget
    pause = 0.5
    while True:
        try:
            return attempt.adapters.status.finish(attempt.settings.run_id, status, owner=attempt.owner,
                                                  fields=fields)
        except StatusStoreUnavailable as exc:
            if time.monotonic() + pause > deadline:
                raise
            log.warning("the terminal write failed; retrying", error=str(exc), status=status.value)
            time.sleep(pause)
            pause = min(pause * 2, 5.0)


def _os_error(attempt: Attempt, exc: OSError) -> RunnerError:
    from ..errors import DiskFullError
    from ..guard.supervision import disk_full

    if exc.errno == 28:
        return disk_full(attempt.run_dir) or DiskFullError(f"no space left writing {exc.filename or attempt.run_dir}")
    return ResultsUploadError(f"storing results failed: {exc}")


def _publish_partial(attempt: Attempt) -> str | None:
    write_manifest(attempt.run_dir)
    return attempt.adapters.artifacts.publish(attempt.run_dir, attempt.settings.run_id)


def _emit_metrics(attempt: Attempt, status: Status, error_type: str | None) -> None:
    safe(emf.emit, strategy=attempt.settings.strategy, duration_s=time.monotonic() - attempt.started,
         status=status.value, error_type=error_type, peak_memory_mb=attempt.peak_memory_mb)


def callback_output(item: dict[str, Any]) -> dict[str, Any]:
    """The small JSON Step Functions receives (far below its 256 KB limit)."""
    summary = item.get("summary") or {}
    return {
        "run_id": item.get("run_id"),
        "status": item.get("status"),
        "metrics": {k: summary.get(k) for k in HEADLINE_OUTPUT if k in summary},
        "results_uri": item.get("results_uri"),
        "mlflow_run_id": item.get("mlflow_run_id"),
    }


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def print_done(item: dict[str, Any], run_dir: Path | None = None) -> None:
    """The terminal summary, for people: what ran, the headline figures, what to doubt, where to look."""
    summary = item.get("summary") or {}
    full = _read_json(run_dir / SUMMARY) if run_dir else None
    full = full or {}
    stake = full.get("stake") or {}
    currency = stake.get("stake_currency") or ""
    timeframe = full.get("timeframe") or item.get("timeframe")
    ran = " · ".join(str(x) for x in (
        full.get("strategy") or item.get("strategy"), ", ".join(full.get("pairs") or item.get("pairs") or []),
        f"{timeframe} (from {full.get('timeframe_source')})" if full.get("timeframe_source") else timeframe,
        full.get("timerange") or item.get("timerange")) if x)
    print(f"run {item.get('run_id')}: {item.get('status')}" + (f"  ({ran})" if ran else ""))

    def pct(value: Any) -> str:
        return f"{value * 100:.2f} %" if isinstance(value, (int, float)) else "-"

    if "profit_total" in summary:
        line = f"  profit         {pct(summary.get('profit_total'))}"
        start, abs_profit = stake.get("dry_run_wallet"), summary.get("profit_total_abs")
        if isinstance(start, (int, float)) and isinstance(abs_profit, (int, float)):
            line += f"  ({abs_profit:+,.2f} {currency} on {start:,.2f} {currency} -> {start + abs_profit:,.2f} {currency})"
        print(line)
        print(f"  max drawdown   {pct(summary.get('max_drawdown_account'))}")
        trades = summary.get("total_trades")
        print(f"  trades         {int(trades) if isinstance(trades, (int, float)) else '-'}"
              f"      win rate {pct(summary.get('winrate'))}")
        sharpe = summary.get("sharpe")
        print(f"  sharpe         {sharpe:.2f}" if isinstance(sharpe, (int, float)) else "  sharpe         -")
    kind = (full.get("data_provenance") or {}).get("kind")
    if kind in ("synthetic", "mixed"):
        print(f"  data           {'' if kind == 'synthetic' else 'partly '}synthetic sample candles "
              "(strategy-runner generate-data), not a market's history")
    inferred = (full.get("markets") or {}).get("inferred_pairs") or []
    if inferred:
        print(f"  markets        inferred for {', '.join(inferred)} (MARKETS=infer: default fees, ticks, limits)")
    for kind, seen in (full.get("warnings") or {}).items():
        print(f"  warning        {kind} x {seen.get('count')}: {str(seen.get('first'))[:120]}")
    if run_dir and (run_dir / "report.html").exists():
        print(f"  report         {run_dir / 'report.html'}")
    print(f"  results        {item.get('results_uri')}")
    if item.get("mlflow_run_id"):
        print(f"  mlflow run     {item.get('mlflow_run_id')}")
