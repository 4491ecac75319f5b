"""Status items as JSON files under RUNS_DIR/.status/, with a lock for compare-and-set."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..lifecycle import ClaimKind, Decision, Status, claim_kind, finish_decision
from .base import Claim, TransitionRefused, cap_fields, iso_ago, lease_timestamp, now_iso


class LocalStatusStore:
    def __init__(self, runs_dir: Path):
        self.root = Path(runs_dir) / ".status"

    def _path(self, run_id: str) -> Path:
        return self.root / f"{run_id}.json"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _write(self, item: dict[str, Any]) -> dict[str, Any]:
        """Write the item (capped, like every store) and return it as written."""
        item = cap_fields(item)
        path = self._path(item["run_id"])
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(item, indent=2, sort_keys=True, default=str))
        os.replace(tmp, path)  # readers never see half an item
        return item

    def get(self, run_id: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._path(run_id).read_text())
        except FileNotFoundError:
            return None

    def claim(self, run_id: str, *, owner: str, lease_seconds: float, fields: dict[str, Any],
              gone_owner: str | None = None) -> Claim:
        with self._locked():
            item = self.get(run_id)
            kind = claim_kind(item, owner=owner, stale_before=iso_ago(lease_seconds), gone_owner=gone_owner)
            if kind != ClaimKind.CLAIMED:
                return Claim(kind, item or {})
            now = now_iso()
            new = {"run_id": run_id, "created_at": now, **(item or {}), **_keep_trace_id(fields, item)}
            new.update(
                status=Status.RUNNING.value, owner=owner, started_at=now, updated_at=now, heartbeat_at=now,
                attempt=int((item or {}).get("attempt", 0)) + 1, retryable=False,
            )
            for stale in ("completed_at", "error_type", "error_message"):
                new.pop(stale, None)
            return Claim(ClaimKind.CLAIMED, self._write(new))

    def finish(self, run_id: str, status: Status, *, owner: str, fields: dict[str, Any]) -> dict[str, Any]:
        with self._locked():
            item = self.get(run_id)
            decision = finish_decision(item, status, owner=owner)
            if decision == Decision.NOOP:
                return item or {}
            if decision == Decision.REFUSE:
                raise TransitionRefused(run_id, status, item)
            now = now_iso()
            new = {"run_id": run_id, "created_at": now, **(item or {}), **_keep_trace_id(fields, item)}
            new.update(status=status.value, updated_at=now, completed_at=now)
            return self._write(new)

    def touch(self, run_id: str, *, owner: str, fields: dict[str, Any]) -> bool:
        with self._locked():
            item = self.get(run_id)
            if not item or item.get("status") != Status.RUNNING or item.get("owner") != owner:
                return False
            self._write({**item, **fields, "updated_at": now_iso()})
            return True

    def expire(self, run_id: str, *, stale_before: str, fields: dict[str, Any]) -> dict[str, Any] | None:
        with self._locked():
            item = self.get(run_id)
            if not item or item.get("status") != Status.RUNNING or not lease_timestamp(item) < stale_before:
                return None
            now = now_iso()
            new = {**item, **fields, "status": Status.FAILED.value, "updated_at": now, "completed_at": now}
            return self._write(new)

    def query(
        self, *, status: Status | None = None, since: str | None = None, trace_id: str | None = None
    ) -> list[dict[str, Any]]:
        items = [json.loads(p.read_text()) for p in self.root.glob("*.json")] if self.root.exists() else []
        if status is not None:
            items = [i for i in items if i.get("status") == status]
        if since is not None:
            items = [i for i in items if i.get("created_at", "") >= since]
        if trace_id is not None:
            items = [i for i in items if i.get("trace_id") == trace_id]
        return sorted(items, key=lambda i: i.get("created_at", ""), reverse=True)


def _keep_trace_id(fields: dict[str, Any], item: dict[str, Any] | None) -> dict[str, Any]:
    """trace_id is written once: the one the backend or workflow put there is kept."""
    if item and item.get("trace_id"):
        return {k: v for k, v in fields.items() if k != "trace_id"}
    return fields
