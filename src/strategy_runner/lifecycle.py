"""The run's status machine as pure data and functions: no I/O here.

PENDING -> RUNNING -> COMPLETED | FAILED | CANCELLED

- Writing the state a run is already in is a no-op (the workflow may write RUNNING too).
- Terminal states refuse to move, except that a FAILED run marked retryable may be
  taken by a new attempt (FAILED -> RUNNING).
- A run may fail or be cancelled before it ever ran (bad input), so PENDING and a
  missing item may go straight to FAILED/CANCELLED. Nothing reaches COMPLETED without
  having been RUNNING.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class Decision(StrEnum):
    APPLY = "apply"  # write the new state
    NOOP = "noop"  # already there: an idempotent replay, write nothing
    REFUSE = "refuse"  # a real conflict


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})

# current (None = no item yet) -> the targets it may move to.
_ALLOWED: dict[Status | None, frozenset[Status]] = {
    None: frozenset({Status.PENDING, Status.RUNNING, Status.FAILED, Status.CANCELLED}),
    Status.PENDING: frozenset({Status.RUNNING, Status.FAILED, Status.CANCELLED}),
    Status.RUNNING: frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED}),
    Status.COMPLETED: frozenset(),
    Status.FAILED: frozenset(),  # FAILED -> RUNNING only when retryable, see decide()
    Status.CANCELLED: frozenset(),
}


def is_terminal(status: Status | str | None) -> bool:
    return status is not None and Status(status) in TERMINAL


def decide(current: Status | str | None, target: Status | str, *, retryable: bool = False) -> Decision:
    """What writing ``target`` over ``current`` means under the transition table."""
    current = Status(current) if current is not None else None
    target = Status(target)
    if current == target:
        return Decision.NOOP
    if current == Status.FAILED and target == Status.RUNNING and retryable:
        return Decision.APPLY
    return Decision.APPLY if target in _ALLOWED[current] else Decision.REFUSE


def sources(target: Status | str) -> frozenset[Status | None]:
    """Every current state from which ``target`` is applied (ignoring the retryable rule)."""
    return frozenset(s for s in _ALLOWED if decide(s, target) == Decision.APPLY)


class ClaimKind(StrEnum):
    CLAIMED = "claimed"  # this attempt now owns the run (RUNNING)
    COMPLETED = "completed"  # already done: report the stored result, do not recompute
    REFUSED = "refused"  # another live attempt owns it, or it is terminal and not retryable


def claim_kind(item: dict | None, *, owner: str, stale_before: str, gone_owner: str | None = None) -> ClaimKind:
    """May an attempt owned by ``owner`` take the run to RUNNING?

    ``stale_before`` is an ISO timestamp: a RUNNING item whose heartbeat is older was
    abandoned and may be taken over. A RUNNING item with no owner was written by the
    workflow itself and is ours to take; so is one whose owner is ``gone_owner`` (an
    attempt shown to be dead, whatever its last heartbeat). Timestamps are ISO-8601 UTC
    strings, so they compare as strings (exactly what the DynamoDB condition does).
    """
    status = item.get("status") if item else None
    if status == Status.COMPLETED:
        return ClaimKind.COMPLETED
    if status == Status.RUNNING:
        holder = item.get("owner")
        heartbeat = item.get("heartbeat_at") or item.get("started_at") or ""
        if not holder or holder in (owner, gone_owner) or heartbeat < stale_before:
            return ClaimKind.CLAIMED
        return ClaimKind.REFUSED
    retryable = bool(item.get("retryable")) if item else False
    if decide(status, Status.RUNNING, retryable=retryable) == Decision.APPLY:
        return ClaimKind.CLAIMED
    return ClaimKind.REFUSED


def finish_decision(item: dict | None, target: Status | str, *, owner: str) -> Decision:
    """Moving to a terminal ``target``: the table, plus 'only the owner ends a RUNNING run'."""
    status = item.get("status") if item else None
    if status == Status.RUNNING and item.get("owner") not in (None, "", owner):
        return Decision.REFUSE
    return decide(status, target)
