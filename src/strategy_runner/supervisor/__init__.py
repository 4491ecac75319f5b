"""The supervisor: owns one run's lifecycle while a worker process does the backtest.

    entry     settings checked, run dir and logs, pre-flight   (before the claim)
    warm.py   the first worker, importing Freqtrade from here on
    claim.py  RUNNING, or: already COMPLETED / refused / other inputs
    work.py   tracking start, inputs, the worker; heartbeats, signals, memory meanwhile
    finish.py results, terminal status (retried, bounded), callback, tracking, metrics

Every way out, from the first line on, ends with an exit code from errors.py and, when a
task token is set, exactly one callback carrying an error name from that table.
"""

from __future__ import annotations

import errno
from typing import Any

from .. import identity, logs
from ..adapters import Adapters, build, orchestrator
from ..artifacts.base import write_manifest
from ..engine.config import effective_config, find_strategy, read_json
from ..errors import DiskFullError, InternalError, RunnerError, ValidationError
from ..lifecycle import Status
from ..settings import Settings
from ..status.base import TransitionRefused
from . import claim, finish, work
from .attempt import Attempt, log, safe
from .finish import HEADLINE_OUTPUT, callback_output
from .warm import WarmWorker
from .work import STOP_GRACE_SECONDS

__all__ = ["HEADLINE_OUTPUT", "STOP_GRACE_SECONDS", "backtest", "callback_output", "fail_before_start",
           "refuse_invalid_run_id"]


def backtest(settings: Settings) -> int:
    """``strategy-runner backtest``: run the configured backtest end to end."""
    try:
        open_run_dir(settings)
    except RunnerError as exc:  # no run dir: no item either, but the orchestrator hears of it
        logs.configure(settings.log_format, settings.log_level)
        logs.bind_run(settings.run_id, settings.trace_id, process="supervisor")
        return report_only(settings, exc)
    logs.bind_run(settings.run_id, settings.trace_id, process="supervisor")
    try:
        preflight(settings)
    except Exception as exc:  # noqa: BLE001 - invalid input
        return fail_before_start(settings, None, as_runner_error(exc))
    warm = WarmWorker(settings)
    try:
        return _claimed(settings, warm)
    finally:
        warm.discard()


def _claimed(settings: Settings, warm: WarmWorker) -> int:
    """The adapters, the claim, the work and the finish, while ``warm`` imports Freqtrade."""
    try:
        adapters = build(settings)
    except Exception as exc:  # noqa: BLE001 - an adapter that cannot be built
        return fail_before_start(settings, None, as_runner_error(exc))
    attempt = Attempt(settings, adapters, warm)
    work.install_signal_handlers(attempt)
    try:
        refused = claim.claim(attempt)
    except Exception as exc:  # noqa: BLE001 - the store: missing table, wrong key, down, hanging
        error = as_runner_error(exc)
        log.error("could not claim the run in the status store", error_type=error.error_name, error=str(error),
                  alert=f"{error.log_terms}: {error.error_name}")
        safe(adapters.orchestrator.fail, error.error_name, str(error))
        return error.exit_code
    if refused is not None:
        return refused
    error = work.run(attempt)
    try:
        return finish.finish(attempt, error)
    except Exception as exc:  # noqa: BLE001 - a bug while finishing still ends with a callback
        internal = as_runner_error(exc)
        log.exception("finishing the run failed", error_type=internal.error_name)
        safe(attempt.adapters.orchestrator.fail, internal.error_name, str(internal))  # unless one was sent
        return internal.exit_code


def open_run_dir(settings: Settings) -> None:
    """RUNS_DIR/<RUN_ID>/ and its run.log; an unusable RUNS_DIR is named, not a traceback."""
    try:
        settings.run_dir.mkdir(parents=True, exist_ok=True)
        logs.configure(settings.log_format, settings.log_level, settings.run_dir / "run.log")
    except OSError as exc:
        raise as_runner_error(exc) from None


def as_runner_error(exc: BaseException) -> RunnerError:
    """Any failure as one of the documented errors, with a one-line message."""
    if isinstance(exc, RunnerError):
        return exc
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return DiskFullError(f"no space left on the disk holding {exc.filename or 'RUNS_DIR'} (ENOSPC): "
                             "free space or give the task more ephemeral storage")
    if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR):
        return ValidationError(f"RUNS_DIR: cannot write {exc.filename or 'the runs directory'}: "
                               f"{exc.strerror} (mount a writable directory or set RUNS_DIR)")
    from ..errors import StatusStoreUnavailable

    if type(exc).__module__.startswith("botocore"):
        return StatusStoreUnavailable(f"AWS call failed: {type(exc).__name__}: {exc}")
    return InternalError(f"{type(exc).__name__}: {exc}")


def preflight(settings: Settings) -> None:
    """Cheap checks of names and files before anything is claimed or loaded."""
    find_strategy(settings.strategies_dir, settings.strategy)
    base = read_json(settings.config_path, "config")
    effective_config(base, None, strategy=settings.strategy, timeframe=settings.timeframe,
                     timerange=settings.timerange, pairs=settings.pairs)


def fail_before_start(settings: Settings, adapters: Adapters | None, error: RunnerError) -> int:
    """Invalid input: record FAILED (unless another attempt owns the run), keep the log where
    results go, and tell the orchestrator."""
    log.error("invalid input; the run does not start", error_type=error.error_name, error=str(error),
              alert=f"{error.log_terms}: {error.error_name}")
    if adapters is None:
        try:
            adapters = build(settings)
        except Exception as exc:  # noqa: BLE001
            log.error("could not reach the stores to record the failure", error=str(exc))
            return report_only(settings, error)
    fields = {"error_type": error.error_name, "error_message": str(error), "retryable": False,
              "trace_id": settings.trace_id, "strategy": settings.strategy, "timerange": settings.timerange,
              "pairs": list(settings.pairs), "timeframe": settings.timeframe}
    try:
        adapters.status.finish(settings.run_id, Status.FAILED, owner=identity.owner(settings), fields=fields)
    except TransitionRefused as exc:
        log.warning("status left as it is", reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - the exit code and callback still report it
        log.error("could not record the failure", error=str(exc))
    if settings.run_dir.is_dir():
        safe(_publish_log, settings, adapters)
    safe(adapters.orchestrator.fail, error.error_name, str(error))
    return error.exit_code


def report_only(settings: Settings, error: RunnerError) -> int:
    """Nothing can be recorded (no run dir, or no valid RUN_ID): log, callback, exit code."""
    log.error("the run cannot start", error_type=error.error_name, error=str(error),
              alert=f"{error.log_terms}: {error.error_name}")
    try:
        safe(orchestrator(settings).fail, error.error_name, str(error))
    except Exception as exc:  # noqa: BLE001
        log.error("could not send the failure callback", error=str(exc))
    return error.exit_code


def refuse_invalid_run_id(settings: Settings, error: RunnerError) -> int:
    """RUN_ID itself is invalid: no item is written under any id (the id cannot name one)."""
    logs.bind_run("(invalid RUN_ID)", settings.trace_id, process="supervisor")
    return report_only(settings, error)


def _publish_log(settings: Settings, adapters: Adapters) -> Any:
    write_manifest(settings.run_dir)
    return adapters.artifacts.publish(settings.run_dir, settings.run_id)
