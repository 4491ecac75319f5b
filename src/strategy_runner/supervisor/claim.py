"""Phase 1: take the run (RUNNING), or report why not.

    no item / PENDING / ours / stale / dead owner / retryable FAILED -> claimed
    COMPLETED, same inputs     -> the stored result is reported again, exit 0
    COMPLETED, other inputs    -> RunConflict naming what differs
    a live owner, or terminal  -> RunConflict
"""

from __future__ import annotations

from typing import Any

from .. import identity, logs, run_inputs
from ..errors import RunConflict
from ..lifecycle import ClaimKind, Status
from .attempt import Attempt, log, safe
from .finish import callback_output, print_done


def item_fields(attempt: Attempt) -> dict[str, Any]:
    s = attempt.settings
    inputs = run_inputs.claim_inputs(s)
    return {
        "trace_id": s.trace_id, "strategy": s.strategy, "strategy_version": s.strategy_version,
        "pairs": list(s.pairs), "timeframe": s.timeframe, "timerange": s.timerange,
        "experiment_name": s.experiment_name, "image": identity.image(s),
        "inputs": inputs, "inputs_fingerprint": run_inputs.fingerprint(inputs),
    }


def claim(attempt: Attempt) -> int | None:
    """None when this attempt now owns the run; otherwise the exit code (the orchestrator has
    been told). Store failures raise StatusStoreError / StatusStoreUnavailable."""
    s, store = attempt.settings, attempt.adapters.status
    fields = item_fields(attempt)
    result = store.claim(s.run_id, owner=attempt.owner, lease_seconds=s.lease_seconds, fields=fields)
    holder = result.item.get("owner")
    if (result.kind == ClaimKind.REFUSED and result.item.get("status") == Status.RUNNING and holder
            and identity.owner_gone(s, holder, result.item.get("started_at"))):
        # The attempt that holds the lease is dead (it could not record its end): take over
        # now instead of waiting out the lease.
        log.warning("the run's owner is gone; taking the run over", previous_owner=holder,
                    heartbeat_at=result.item.get("heartbeat_at"))
        result = store.claim(s.run_id, owner=attempt.owner, lease_seconds=s.lease_seconds, fields=fields,
                             gone_owner=holder)
    if result.kind == ClaimKind.COMPLETED:
        return _report_completed(attempt, result.item, fields["inputs"])
    if result.kind == ClaimKind.REFUSED:
        item = result.item
        return _refuse(attempt, RunConflict(
            f"run {s.run_id} is {item.get('status')} under owner {item.get('owner')} "
            f"(heartbeat {item.get('heartbeat_at')}); refusing a duplicate attempt"))
    recorded_trace = result.item.get("trace_id")
    if recorded_trace and recorded_trace != s.trace_id:
        # The backend or workflow named the trace first: its logs and the trace GSI use it.
        log.info("using the trace_id already on the status item", trace_id=recorded_trace, ignored=s.trace_id)
        logs.bind_run(s.run_id, recorded_trace, process="supervisor")
        attempt.settings = s.model_copy(update={"trace_id": recorded_trace})
    log.info("run started", attempt=result.item.get("attempt"), owner=attempt.owner, strategy=s.strategy,
             pairs=list(s.pairs), timerange=s.timerange, timeframe=s.timeframe)
    return None


def _report_completed(attempt: Attempt, item: dict[str, Any], inputs: dict[str, Any]) -> int:
    differs = run_inputs.differences(item.get("inputs"), inputs)
    if differs:
        return _refuse(attempt, RunConflict(
            f"run {attempt.settings.run_id} already COMPLETED with other inputs ({'; '.join(differs)}); "
            f"use a new RUN_ID for a different backtest"))
    log.info("run already completed; reporting its stored result", results_uri=item.get("results_uri"))
    attempt.adapters.orchestrator.succeed(callback_output(item))
    print_done(item, attempt.run_dir)
    return 0


def _refuse(attempt: Attempt, error: RunConflict) -> int:
    log.error("run refused", error_type=error.error_name, error=str(error), alert=error.log_terms)
    safe(attempt.adapters.orchestrator.fail, error.error_name, str(error))
    return error.exit_code
