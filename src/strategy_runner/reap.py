"""``strategy-runner reap``: end RUNNING runs whose attempt died without a word.

A container that is SIGKILLed, loses its host or hangs stops heartbeating; its status item
stays RUNNING for ever (the runbooks' "stuck in RUNNING"). Reap finds RUNNING items whose
heartbeat is older than the lease and marks them FAILED, retryable, with a stale-lease
reason. Safe on a schedule and against a live run: each write is conditional on the
heartbeat still being stale (the store's ``expire``), so a run that beat meanwhile is
left alone, and a live attempt that was reaped finds out at its next heartbeat.
"""

from __future__ import annotations

from typing import Any

from .lifecycle import Status
from .status.base import StatusStore, iso_ago, lease_timestamp, now_iso
from .tracking.base import Tracker

ERROR_TYPE = "StaleLease"


def reap(store: StatusStore, *, lease_seconds: float, dry_run: bool = False) -> list[dict[str, Any]]:
    """FAILED every RUNNING item whose heartbeat is older than ``lease_seconds``; returns them."""
    stale_before = iso_ago(lease_seconds)
    reaped = []
    for item in store.query(status=Status.RUNNING):
        last = lease_timestamp(item)
        if last >= stale_before:
            continue
        fields = {
            "error_type": ERROR_TYPE,
            "error_message": (
                f"no heartbeat since {last or 'ever'} (lease {lease_seconds:g} s, checked {now_iso()}); "
                f"attempt {item.get('attempt', '?')} by {item.get('owner') or 'no owner'} is presumed dead. "
                f"Retry the same RUN_ID to run it again"
            ),
            "retryable": True,
            "reaped_at": now_iso(),
        }
        if dry_run:
            reaped.append({**item, **fields, "status": Status.FAILED.value})
            continue
        new = store.expire(item["run_id"], stale_before=stale_before, fields=fields)
        if new is not None:
            reaped.append(new)
    return reaped


def close_tracking(tracker: Tracker, reaped: list[dict[str, Any]]) -> None:
    """A dead attempt also left its MLflow run RUNNING: end it as KILLED with the reason."""
    for item in reaped:
        if item.get("mlflow_run_id"):
            error = tracker.close(item["mlflow_run_id"], "KILLED", item["error_message"])
            if error:
                item["tracking_error"] = error


def add_parser(sub: Any) -> None:
    """Register ``strategy-runner reap`` on the CLI's subparsers."""
    p = sub.add_parser("reap", help="mark RUNNING runs whose heartbeat is older than the lease FAILED (StaleLease)")
    p.add_argument("--lease-seconds", type=float, default=None,
                   help="heartbeat age that makes a run stale (default: LEASE_SECONDS)")
    p.add_argument("--dry-run", action="store_true", help="list what would be reaped, write nothing")
    p.add_argument("--json", action="store_true", help="print the reaped items as JSON")
    p.set_defaults(func=_command)


def _command(args: Any) -> int:
    import json

    from . import adapters
    from .errors import ValidationError
    from .settings import load_settings

    settings = load_settings()
    lease = args.lease_seconds if args.lease_seconds is not None else settings.lease_seconds
    if lease <= 0:
        raise ValidationError(f"--lease-seconds={lease!r}: expected a number of seconds above 0")
    reaped = reap(adapters.status_store(settings), lease_seconds=lease, dry_run=args.dry_run)
    if not args.dry_run:
        close_tracking(adapters.tracker(settings), reaped)
    if args.json:
        print(json.dumps(reaped, indent=2, sort_keys=True, default=str))
        return 0
    verb = "would reap" if args.dry_run else "reaped"
    for item in reaped:
        print(f"{verb} {item['run_id']}: last heartbeat {lease_timestamp(item) or 'never'}, "
              f"owner {item.get('owner') or '-'} -> FAILED {ERROR_TYPE} (retryable)")
    print(f"{verb} {len(reaped)} run(s) with no heartbeat for {lease:g} s")
    return 0
