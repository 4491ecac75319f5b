"""The exception hierarchy and the one place that maps outcomes to exit codes.

Every failure a run can meet is one of these classes. Each carries:
- ``exit_code``: what the process exits with (documented in the README);
- ``error_name``: the name Step Functions' Retry/Catch matches (SendTaskFailure ``error``);
- ``retryable``: whether a new attempt of the same RUN_ID may take the run over.
"""

from __future__ import annotations

from typing import ClassVar

EXIT_OK = 0
EXIT_INTERNAL = 1


class RunnerError(Exception):
    exit_code: ClassVar[int] = EXIT_INTERNAL
    error_name: ClassVar[str] = "RunnerError"
    retryable: ClassVar[bool] = False
    #: The terminal status a run ends in when this error stops it.
    terminal_status: ClassVar[str] = "FAILED"
    #: Words on the run's failure log line that the runbooks' CloudWatch filters look for
    #: (runbook 001: "ERROR OR Exception", "MemoryError OR OutOfMemory", "insufficient data OR no data").
    log_terms: ClassVar[str] = "ERROR"


class InternalError(RunnerError):
    """A bug, or a failure nothing else names: exit 1, still with a callback and a status."""

    error_name = "InternalError"


class ValidationError(RunnerError):
    """Input from the outside world (environment, names, files) is invalid."""

    exit_code = 2
    error_name = "ValidationError"


class ConfigurationError(RunnerError):
    """A Freqtrade configuration (base, overlay or strategy settings) is unusable."""

    exit_code = 2
    error_name = "ConfigurationError"


class DataError(RunnerError):
    """Candles are missing or do not cover the range (the workflow's DataStaleError)."""

    exit_code = 3
    error_name = "DataStaleError"
    log_terms = "ERROR no data"


class BacktestError(RunnerError):
    """The strategy or Freqtrade failed while backtesting."""

    exit_code = 4
    error_name = "BacktestError"
    log_terms = "ERROR Exception"


class MemoryLimitExceeded(RunnerError):
    """The run would not fit, or grew past the soft memory limit."""

    exit_code = 5
    error_name = "MemoryLimitExceeded"
    log_terms = "ERROR OutOfMemory"


class ResultsUploadError(RunnerError):
    """Results could not be stored durably (S3); the local copy is kept."""

    exit_code = 6
    error_name = "ResultsUploadError"
    retryable = True


class ResultsAccessError(RunnerError):
    """The results bucket does not exist or denies access: a retry would meet the same wall."""

    exit_code = 6
    error_name = "ResultsAccessError"


class DiskFullError(RunnerError):
    """The local disk (RUNS_DIR, DATA_DIR) is full (ENOSPC); the message names the path."""

    exit_code = 6
    error_name = "DiskFullError"


class RunConflict(RunnerError):
    """Another live attempt owns this RUN_ID (duplicate delivery); nothing was touched."""

    exit_code = 7
    error_name = "RunConflict"


class LeaseLost(RunnerError):
    """This live attempt no longer owns its run (reaped, or taken over after a missed lease):
    it stops and reports so through its own callback; the item belongs to someone else."""

    exit_code = 7
    error_name = "LeaseLost"


class StatusStoreError(RunnerError):
    """The status store refuses the run for good: the table is missing, the key schema is
    not DYNAMODB_KEY, access is denied, or a write is invalid."""

    exit_code = 9
    error_name = "StatusStoreError"


class StatusStoreUnavailable(StatusStoreError):
    """The status store could not be reached in time (connection refused, no answer,
    throttling, 5xx): the outcome is not recorded; retry the same RUN_ID."""

    error_name = "StatusStoreUnavailable"
    retryable = True


class Cancelled(RunnerError):
    """The orchestrator gave up on the run (task token expired) or a stop was requested."""

    exit_code = 8
    error_name = "Cancelled"
    terminal_status = "CANCELLED"


class SpotInterrupted(RunnerError):
    """SIGTERM/SIGINT (Fargate Spot notice, ECS StopTask): retry the same RUN_ID."""

    exit_code = 75  # EX_TEMPFAIL
    error_name = "SpotInterrupted"
    retryable = True


def exit_code_for(exc: BaseException | None) -> int:
    """The single mapping from an outcome to the process exit code."""
    if exc is None:
        return EXIT_OK
    if isinstance(exc, RunnerError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return SpotInterrupted.exit_code
    return EXIT_INTERNAL


def error_name_for(exc: BaseException) -> str:
    return exc.error_name if isinstance(exc, RunnerError) else "InternalError"


def error_from_name(name: str, message: str) -> RunnerError:
    """Rebuild a worker's error in the supervisor from its reported name."""
    classes = {cls.error_name: cls for cls in _subclasses(RunnerError)}
    return classes.get(name, BacktestError)(message)


def _subclasses(cls: type) -> list[type]:
    return [sub for direct in cls.__subclasses__() for sub in (direct, *_subclasses(direct))]
