"""The supervisor: owns one run's lifecycle while a worker process does the backtest.

    claim RUNNING -> start tracking -> worker (heartbeats meanwhile) -> results
    -> COMPLETED, or FAILED/CANCELLED with a reason -> callback -> exit code

Freqtrade and MLflow are never imported here, so RUNNING is written fast and a dying
backtest cannot take the lifecycle with it.
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

from . import identity, logs
from .adapters import Adapters, build, status_store
from .artifacts.base import SUMMARY, write_manifest
from .engine.config import effective_config, find_strategy, read_json
from .heartbeat.base import HeartbeatLoop
from .errors import (
    BacktestError,
    Cancelled,
    MemoryLimitExceeded,
    ResultsUploadError,
    RunConflict,
    RunnerError,
    SpotInterrupted,
    error_from_name,
    error_name_for,
    exit_code_for,
)
from .lifecycle import ClaimKind, Status
from .settings import Settings, worker_environment
from .status.base import TransitionRefused, now_iso
from .worker import OUTCOME, OVERLAY, PROGRESS, WORK
from .guard.memory import MemoryWatch
from .guard.supervision import (
    MEMORY_STOP_GRACE_SECONDS,
    memory_exceeded,
    memory_preflight,
    worker_exit_error,
    worker_log_tail,
)
from .cache.hook import CacheHook
from .progress import ProgressReporter

log = logs.get_logger("strategy_runner.runner")

#: Seconds a worker gets to stop after SIGTERM before it is killed (ECS allows 30 in all).
STOP_GRACE_SECONDS = 10.0
HEADLINE_OUTPUT = ("profit_total", "profit_total_abs", "max_drawdown_account", "sharpe", "total_trades", "winrate")


def backtest(settings: Settings) -> int:
    """``strategy-runner backtest``: run the configured backtest end to end."""
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    logs.configure(settings.log_format, settings.log_level, settings.run_dir / "run.log")
    logs.bind_run(settings.run_id, settings.trace_id, process="supervisor")
    settings = adopt_recorded_trace_id(settings)
    adapters = build(settings)
    try:
        preflight(settings)
    except RunnerError as exc:
        return fail_before_start(settings, adapters, exc)
    return Supervisor(settings, adapters).run()


def adopt_recorded_trace_id(settings: Settings) -> Settings:
    """Keep the trace_id the backend or workflow already wrote on the item (the trace GSI and
    the other services' logs use it); TRACE_ID only names runs that have none yet."""
    try:
        recorded = (status_store(settings).get(settings.run_id) or {}).get("trace_id")
    except Exception as exc:  # noqa: BLE001 - the claim will meet the same store and report it
        log.warning("could not read the status item before claiming it", error=str(exc))
        return settings
    if not recorded or recorded == settings.trace_id:
        return settings
    log.info("using the trace_id already on the status item", trace_id=recorded, ignored=settings.trace_id)
    logs.bind_run(settings.run_id, recorded, process="supervisor")
    return settings.model_copy(update={"trace_id": recorded})


def preflight(settings: Settings) -> None:
    """Cheap checks of names and files before anything is claimed or loaded."""
    find_strategy(settings.strategies_dir, settings.strategy)
    base = read_json(settings.configs_dir / settings.config_name, "config")
    effective_config(base, None, strategy=settings.strategy, timeframe=settings.timeframe,
                     timerange=settings.timerange, pairs=settings.pairs)


def fail_before_start(settings: Settings, adapters: Adapters, error: RunnerError) -> int:
    """Invalid input: record FAILED (unless another attempt owns the run) and tell the orchestrator."""
    log.error("invalid input; the run does not start", error_type=error.error_name, error=str(error))
    fields = {"error_type": error.error_name, "error_message": str(error)[:2000], "retryable": False,
              "trace_id": settings.trace_id, "strategy": settings.strategy, "timerange": settings.timerange,
              "pairs": list(settings.pairs), "timeframe": settings.timeframe}
    try:
        adapters.status.finish(settings.run_id, Status.FAILED, owner=identity.owner(settings), fields=fields)
    except TransitionRefused as exc:
        log.warning("status left as it is", reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - the exit code and callback still report it
        log.error("could not record the failure", error=str(exc))
    Supervisor._safe(adapters.orchestrator.fail, error.error_name, str(error))
    return error.exit_code


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


class Supervisor:
    def __init__(self, settings: Settings, adapters: Adapters):
        self.settings = settings
        self.adapters = adapters
        self.owner = identity.owner(settings)
        self.run_dir = settings.run_dir
        self.stop_reason: RunnerError | None = None  # set by a signal or the orchestrator
        self._stop = threading.Event()
        self.mlflow_run_id: str | None = None
        self.peak_memory_mb: float | None = None
        self.memory: MemoryWatch | None = None  # the runtime guard, set up by the memory pre-flight
        self.progress: dict[str, Any] = {}
        self.cache = CacheHook(settings)
        self.progress_reporter = ProgressReporter()

    # --- the lifecycle ----------------------------------------------------------------
    def run(self) -> int:
        s = self.settings
        claim = self.adapters.status.claim(
            s.run_id, owner=self.owner, lease_seconds=s.lease_seconds, fields=self._item_fields()
        )
        if claim.kind == ClaimKind.COMPLETED:
            log.info("run already completed; reporting its stored result", results_uri=claim.item.get("results_uri"))
            self.adapters.orchestrator.succeed(callback_output(claim.item))
            _print_done(claim.item)
            return 0
        if claim.kind == ClaimKind.REFUSED:
            error = RunConflict(
                f"run {s.run_id} is {claim.item.get('status')} under owner {claim.item.get('owner')} "
                f"(heartbeat {claim.item.get('heartbeat_at')}); refusing a duplicate attempt"
            )
            log.error("run refused", error=str(error))
            self._safe(self.adapters.orchestrator.fail, error.error_name, str(error))
            return error.exit_code
        log.info("run started", attempt=claim.item.get("attempt"), owner=self.owner, strategy=s.strategy,
                 pairs=list(s.pairs), timerange=s.timerange, timeframe=s.timeframe)
        self._install_signal_handlers()
        error: BaseException | None = None
        try:
            # Heartbeats from the claim on: tracking and fetching count against HeartbeatSeconds too.
            with HeartbeatLoop(s.heartbeat_interval_seconds, self._beat, self._beat_failed):
                # Opening the MLflow run takes seconds (its own process, bounded by a deadline):
                # do it while the backtest starts instead of before.
                tracking = threading.Thread(target=contextvars.copy_context().run, args=(self._start_tracking,),
                                            name="tracking-start", daemon=True)  # keeps run_id on its logs
                tracking.start()
                try:
                    self.prepare()
                    if self.cache.reuse():
                        self.progress = {"phase": "cached", "fraction": 1.0}
                    else:
                        self._run_worker()
                        self.cache.note_computed()
                finally:
                    tracking.join()
        except BaseException as exc:  # noqa: BLE001 - every way out ends in a terminal status
            error = exc
        # Upload and tracking can take longer than HeartbeatSeconds: keep beating until the callback.
        with HeartbeatLoop(s.heartbeat_interval_seconds, self._beat_finishing, lambda e: not isinstance(e, Cancelled)):
            return self._finish(error)

    def _start_tracking(self) -> None:
        self.mlflow_run_id = self._safe(self.adapters.tracker.start)
        if self.mlflow_run_id:
            self._safe(self.adapters.status.touch, self.settings.run_id, owner=self.owner,
                       fields={"mlflow_run_id": self.mlflow_run_id})

    def prepare(self) -> None:
        """Fetch what the worker needs that is not on disk yet (S3 config overlay, data)."""
        if self.settings.config_s3_path or self.settings.data_s3_path:
            from . import aws
            from .s3_inputs import prepare_inputs

            prepare_inputs(self.settings, aws.client(self.settings, "s3"))

    def _item_fields(self) -> dict[str, Any]:
        s = self.settings
        return {
            "trace_id": s.trace_id, "strategy": s.strategy, "strategy_version": s.strategy_version,
            "pairs": list(s.pairs), "timeframe": s.timeframe, "timerange": s.timerange,
            "experiment_name": s.experiment_name, "image": identity.image(s),
        }

    def _finish(self, error: BaseException | None) -> int:
        """Store results, then record the outcome: status item, callback, MLflow.

        Success: results are stored before COMPLETED is written (COMPLETED means they are
        there), and tracking before it too, so a tracking failure lands on the item.
        Failure: the terminal status and the callback come first (a stop must finish inside
        ECS's stopTimeout); tracking follows, best effort.
        """
        s = self.settings
        summary = _read_json(self.run_dir / SUMMARY)
        results_uri = upload_s = None
        if error is None:
            try:
                write_manifest(self.run_dir)
                upload_started = time.monotonic()
                results_uri = self.adapters.artifacts.publish(self.run_dir, s.run_id)
                upload_s = round(time.monotonic() - upload_started, 3)
            except ResultsUploadError as exc:
                error = exc
            except Exception as exc:  # noqa: BLE001
                error = ResultsUploadError(f"storing results failed: {exc}")
        status = Status.COMPLETED if error is None else Status(getattr(error, "terminal_status", "FAILED"))
        interrupted = status == Status.CANCELLED or isinstance(error, SpotInterrupted)
        tracking_status = "FINISHED" if error is None else "KILLED" if interrupted else "FAILED"
        tracked_summary = {**(summary or {}), "supervisor": {"peak_memory_mb": self.peak_memory_mb, "upload_s": upload_s}}

        fields: dict[str, Any] = {"peak_memory_mb": self.peak_memory_mb, "progress": self.progress or None,
                                  **self.cache.fields}
        if self.memory is not None:
            fields.update(memory_limit_mb=self.memory.limit.mb, memory_limit_source=self.memory.limit.source)
        if summary:
            fields["summary"] = {k: summary["metrics"].get(k) for k in HEADLINE_OUTPUT}

        if error is None:
            tracking_error = self._safe(self.adapters.tracker.finish, tracking_status, tracked_summary, self.run_dir)
            if tracking_error:
                fields["tracking_error"] = tracking_error
            item = self._record(status, {**fields, "results_uri": results_uri})
            self._safe(self.cache.store)
            log.info("run completed", results_uri=results_uri, mlflow_run_id=self.mlflow_run_id)
            self._safe(self.adapters.orchestrator.succeed, callback_output(item))
            _print_done(item)
            return exit_code_for(None)

        fields.update(
            error_type=error_name_for(error), error_message=str(error)[:2000] or type(error).__name__,
            retryable=bool(getattr(error, "retryable", False)),
            traceback_tail=getattr(error, "traceback_tail", None),
        )
        log.error("run failed", error_type=fields["error_type"], error=fields["error_message"])
        if not isinstance(error, ResultsUploadError):
            # Whatever exists (logs, partial results) is kept; upload it best effort.
            fields["results_uri"] = self._safe(self._publish_partial)
        self._record(status, fields)
        if not isinstance(error, Cancelled):  # a cancelled token no longer takes callbacks
            self._safe(self.adapters.orchestrator.fail, error_name_for(error), str(error)[:32000])
        self._safe(self.adapters.tracker.finish, tracking_status, tracked_summary, self.run_dir)
        return exit_code_for(error)

    def _record(self, status: Status, fields: dict[str, Any]) -> dict[str, Any]:
        """The terminal write; the item as written (or as we meant it when the store refused)."""
        try:
            return self.adapters.status.finish(self.settings.run_id, status, owner=self.owner, fields=fields)
        except TransitionRefused as exc:
            log.error("could not record the outcome: the run was taken over", error=str(exc))
        except Exception as exc:  # noqa: BLE001 - the store is down even after retries
            # The callback and exit code still report the outcome; `reap` ends the item later.
            log.error("could not record the outcome in the status store", error=str(exc), status=status.value)
        return {**fields, "run_id": self.settings.run_id, "status": status.value}

    def _publish_partial(self) -> str | None:
        write_manifest(self.run_dir)
        return self.adapters.artifacts.publish(self.run_dir, self.settings.run_id)

    # --- the worker -------------------------------------------------------------------
    def _run_worker(self) -> None:
        work = self.run_dir / WORK
        work.mkdir(parents=True, exist_ok=True)
        for stale in (OUTCOME, PROGRESS):
            (work / stale).unlink(missing_ok=True)
        (self.run_dir / SUMMARY).unlink(missing_ok=True)
        if self.stop_reason is not None:  # a signal arrived before the worker started
            raise self.stop_reason
        self.memory = memory_preflight(self.settings, work / OVERLAY)
        proc = subprocess.Popen(
            [sys.executable, "-m", "strategy_runner.worker"], env=worker_environment(self.settings)
        )
        log.info("worker started", pid=proc.pid)
        signalled_at: float | None = None
        while proc.poll() is None:
            if self._stop.wait(0.25) and signalled_at is None:
                signalled_at = time.monotonic()
                proc.send_signal(signal.SIGTERM)
            # A worker over its memory is still growing: it gets a shorter grace.
            grace = MEMORY_STOP_GRACE_SECONDS if isinstance(self.stop_reason, MemoryLimitExceeded) else STOP_GRACE_SECONDS
            if signalled_at is not None and time.monotonic() - signalled_at > grace:
                proc.kill()
            self._sample(proc)
        self._sample(proc)
        outcome = _read_json(work / OUTCOME)
        if self.stop_reason is not None:
            log.info("worker stopped", returncode=proc.returncode, peak_memory_mb=self.peak_memory_mb,
                     seconds_after_stop=round(time.monotonic() - signalled_at, 3) if signalled_at else None)
            raise self.stop_reason
        if outcome is None:
            raise worker_exit_error(proc.returncode, self.progress, self.memory,
                                    worker_log_tail(self.run_dir / "run.log"))
        if not outcome.get("ok"):
            error = error_from_name(outcome.get("error_type", ""), outcome.get("error_message", ""))
            error.traceback_tail = outcome.get("traceback_tail")  # type: ignore[attr-defined]
            raise error
        if not (self.run_dir / SUMMARY).exists():
            raise BacktestError("the worker reported success but wrote no backtest-result.json")

    def _sample(self, proc: subprocess.Popen) -> None:
        progress = _read_json(self.run_dir / WORK / PROGRESS)
        if progress:
            self.progress = self.progress_reporter.update(progress)
        if self.memory is not None:
            self.memory.sample()
            self.peak_memory_mb = round(self.memory.peak_mb, 1)
            if self.memory.over() and self.stop_reason is None:
                self.request_stop(memory_exceeded(self.memory, self.progress))

    # --- heartbeats and signals -------------------------------------------------------
    def _beat(self) -> None:
        fields = {"heartbeat_at": now_iso(), "progress": self.progress or None, "peak_memory_mb": self.peak_memory_mb}
        if not self.adapters.status.touch(self.settings.run_id, owner=self.owner, fields=fields):
            self.request_stop(Cancelled("the status item no longer names this attempt as owner"))
            return
        self.adapters.orchestrator.heartbeat()

    def _beat_finishing(self) -> None:
        """While results are stored: the item is still RUNNING (touch is a no-op once it is not)."""
        self.adapters.status.touch(self.settings.run_id, owner=self.owner, fields={"heartbeat_at": now_iso()})
        self.adapters.orchestrator.heartbeat()

    def _beat_failed(self, exc: Exception) -> bool:
        if isinstance(exc, Cancelled):
            self.request_stop(exc)
            return False
        log.warning("heartbeat failed; will retry", error=str(exc))
        return True

    def request_stop(self, reason: RunnerError) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            log.warning("stopping the backtest", reason=str(reason), error_type=reason.error_name)
        self._stop.set()

    def _install_signal_handlers(self) -> None:
        def on_signal(signum: int, _frame: Any) -> None:
            name = signal.Signals(signum).name
            if self.stop_reason is not None:  # ECS may repeat SIGTERM; the stop is already under way
                log.info("signal ignored: already stopping", signal=name, reason=self.stop_reason.error_name)
                return
            self.request_stop(SpotInterrupted(f"{name} received (Spot interruption or StopTask); retry the run"))

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, on_signal)

    @staticmethod
    def _safe(fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Call a side effect that must not stop the lifecycle from finishing."""
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            log.error("side effect failed", call=getattr(fn, "__qualname__", str(fn)), error=str(exc))
            return None


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _print_done(item: dict[str, Any]) -> None:
    summary = item.get("summary") or {}
    print(f"run {item.get('run_id')}: {item.get('status')}")
    for key in HEADLINE_OUTPUT:
        if key in summary:
            print(f"  {key:<22} {summary[key]}")
    print(f"  results                {item.get('results_uri')}")
    if item.get("mlflow_run_id"):
        print(f"  mlflow_run_id          {item.get('mlflow_run_id')}")
