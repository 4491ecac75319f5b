"""The status store protocol: the run's item in the workflow-state table.

An item is a flat dict. The keys operators read (runbooks 000/001): run_id, trace_id,
strategy, pairs, timerange, status, created_at, started_at, updated_at, completed_at,
attempt, owner, heartbeat_at, progress, mlflow_run_id, results_uri, summary,
error_type, error_message, retryable, peak_memory_mb.

Every write is conditional and follows ``lifecycle``: adapters translate the same rules
into their own compare-and-set (a file lock, a DynamoDB ConditionExpression).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from ..lifecycle import ClaimKind, Status
from ..logs import redact

#: Every field that can grow is cut so an item stays far below DynamoDB's 400 KB limit
#: (a write over it fails, and a run whose terminal write fails would stay RUNNING).
TEXT_LIMITS = {"error_message": 4000, "traceback_tail": 8000, "tracking_error": 2000}
DEFAULT_TEXT_LIMIT = 2000
STRUCTURED_LIMIT = 16_000  # bytes of JSON for progress, summary and the like


def cap_text(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    marker = f" ... [{len(text) - limit + 40} characters cut]"
    return text[: max(0, limit - len(marker))] + marker


def cap_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields as written: credentials in URIs redacted, long text cut, oversized
    structures replaced by a cut JSON string."""
    capped: dict[str, Any] = {}
    for key, value in redact(fields).items():
        if isinstance(value, str):
            value = cap_text(value, TEXT_LIMITS.get(key, DEFAULT_TEXT_LIMIT))
        elif isinstance(value, (dict, list, tuple)):
            body = json.dumps(value, default=str)
            if len(body) > STRUCTURED_LIMIT:
                value = cap_text(body, STRUCTURED_LIMIT)
        capped[key] = value
    return capped


def now_iso(at: datetime | None = None) -> str:
    """UTC ISO-8601 with a fixed width, so timestamps compare correctly as strings."""
    return (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_ago(seconds: float) -> str:
    return now_iso(datetime.now(UTC) - timedelta(seconds=seconds))


@dataclass(frozen=True)
class Claim:
    kind: ClaimKind
    item: dict[str, Any]  # the item after the claim, or the one that refused it


class TransitionRefused(Exception):
    """The write conflicts with the item's current state (not an idempotent replay)."""

    def __init__(self, run_id: str, target: str, item: dict | None):
        self.item = item or {}
        super().__init__(
            f"run {run_id}: cannot move from {self.item.get('status', 'no item')} "
            f"(owner {self.item.get('owner', '-')}) to {target}"
        )


class StatusStore(Protocol):
    def get(self, run_id: str) -> dict[str, Any] | None:
        """The item, or None."""

    def claim(self, run_id: str, *, owner: str, lease_seconds: float, fields: dict[str, Any],
              gone_owner: str | None = None) -> Claim:
        """Move to RUNNING for ``owner`` (creating the item if needed), attempt + 1.

        COMPLETED is reported, not recomputed; a live run under another owner refuses
        without writing anything, unless that owner is ``gone_owner`` (shown to be dead).
        A ``trace_id`` already on the item is kept. Store failures raise
        errors.StatusStoreError (permanent) or StatusStoreUnavailable (transient).
        """

    def finish(self, run_id: str, status: Status, *, owner: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Move to a terminal status. Replaying the same terminal write is a no-op.
        Raises TransitionRefused on a real conflict."""

    def touch(self, run_id: str, *, owner: str, fields: dict[str, Any]) -> bool:
        """Update a RUNNING item this owner holds (heartbeat, progress, mlflow_run_id).
        False when the run is no longer ours (taken over or finished)."""

    def query(
        self, *, status: Status | None = None, since: str | None = None, trace_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Items by status (created_at >= since, newest first) or by trace_id."""

    def expire(self, run_id: str, *, stale_before: str, fields: dict[str, Any]) -> dict[str, Any] | None:
        """Move a RUNNING item whose lease ran out to FAILED (``strategy-runner reap``).

        Conditional on the item still being RUNNING with ``lease_timestamp(item) < stale_before``
        (compare-and-set), so a run that heartbeats meanwhile is left alone. Returns the new
        item, or None when the condition did not hold.
        """


def lease_timestamp(item: dict[str, Any]) -> str:
    """When a RUNNING item last showed life: its heartbeat, else when it started or was written."""
    return item.get("heartbeat_at") or item.get("started_at") or item.get("updated_at") or item.get("created_at") or ""
