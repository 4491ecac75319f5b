"""What an error on a status item means for the operator: transient or permanent, and what to do.

Derived from ``errors.py``: an error class marked ``retryable`` is transient (a new attempt
of the same RUN_ID may take the run over); every other class fails the same way again
until something is changed.
"""

from __future__ import annotations

from typing import Any

from .. import errors

TRANSIENT = "transient"
PERMANENT = "permanent"
UNKNOWN = "unknown"

# error_name -> what to do. Names not listed get a generic answer from the class.
_ADVICE = {
    "ValidationError": "fix the input the message names (variable, value, what was expected) and start "
    "the run again; the same input fails the same way",
    "ConfigurationError": "fix the Freqtrade config, the CONFIG_S3_PATH overlay or the strategy's settings "
    "named in the message; a retry without a change fails the same way",
    "DataStaleError": "the candles are missing or do not cover TIMERANGE (plus the strategy's start-up "
    "candles): sync the data for these pairs (DATA_S3_PATH / DATA_DIR) or shorten TIMERANGE, then rerun",
    "BacktestError": "the strategy or Freqtrade failed: read traceback_tail and run.log, fix the strategy, "
    "then rerun",
    "MemoryLimitExceeded": "the backtest does not fit in the task's memory (see peak_memory_mb): run fewer "
    "pairs, a shorter TIMERANGE, or give the task more memory (e.g. 2048 -> 4096 MB)",
    "ResultsUploadError": "the backtest finished but storing results failed (S3); rerun the same RUN_ID "
    "(the workflow's Retry does this) once S3 is reachable",
    "SpotInterrupted": "the task was stopped (Fargate Spot interruption or StopTask); rerun the same RUN_ID "
    "(the workflow's Retry does this), it starts over",
    "StaleLease": "the attempt stopped heartbeating and was reaped (`strategy-runner reap`): presumed dead "
    "(OOM kill, lost host). Check its logs, then rerun the same RUN_ID",
    "RunConflict": "another live attempt owns this RUN_ID (a duplicate delivery); nothing to do unless "
    "that attempt's heartbeat goes stale",
    "Cancelled": "the orchestrator gave up on the run (task token expired or a stop was requested); start "
    "a new execution if the result is still wanted",
    "InternalError": "an unexpected error in the runner: read traceback_tail and run.log and report it",
    "ResultsAccessError": "the results bucket does not exist or the task role may not write to it: fix "
    "RESULTS_BUCKET or the role's s3:PutObject on backtests/*, then rerun (a retry alone fails the same way)",
    "DiskFullError": "the task's disk filled up (the message names the path): give the task more ephemeral "
    "storage or run fewer pairs / a shorter TIMERANGE, then rerun",
    "LeaseLost": "this attempt was reaped or taken over while it still ran (its heartbeats were late); the "
    "item shows the outcome that stands. Check why heartbeats stalled; raise LEASE_SECONDS if they are slow",
    "StatusStoreError": "the status table refused the run: check DYNAMODB_TABLE exists in this region, "
    "DYNAMODB_KEY is its partition key, and the task role may use it, then rerun",
    "StatusStoreUnavailable": "the status table did not answer, so the outcome was not recorded; rerun the "
    "same RUN_ID (the workflow's Retry does this): it takes the run over and reuses the cached result",
}


def _classes() -> dict[str, type[errors.RunnerError]]:
    return {cls.error_name: cls for cls in errors._subclasses(errors.RunnerError)}


def classify(error_type: str | None, retryable: Any = None) -> dict[str, str] | None:
    """``{"kind": transient|permanent|unknown, "advice": ...}`` for an item's error, None without one."""
    if not error_type:
        return None
    cls = _classes().get(error_type)
    if cls is not None:
        kind = TRANSIENT if cls.retryable else PERMANENT
    elif retryable is not None:
        kind = TRANSIENT if retryable else PERMANENT  # an error this runner does not know: trust the item
    else:
        kind = UNKNOWN
    advice = _ADVICE.get(error_type)
    if advice is None:
        advice = ("transient: rerun the same RUN_ID" if kind == TRANSIENT
                  else "read error_message, traceback_tail and run.log")
    return {"kind": kind, "advice": advice}


STALE_ADVICE = (
    "RUNNING but no heartbeat within LEASE_SECONDS: the task most likely died (OOM kill, lost host). "
    "Check the task's logs, then rerun the same RUN_ID (the new attempt takes the stale run over), "
    "or mark it FAILED with `strategy-runner reap`"
)
