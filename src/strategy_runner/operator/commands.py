"""The CLI handlers for ``status`` and ``runs`` (read-only; they never change a run)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..lifecycle import Status

NOT_FOUND_EXIT = 1
STORE_FAILED_EXIT = 1


def _settings_and_store() -> tuple[Any, Any]:
    from ..adapters import status_store
    from ..settings import load_settings

    settings = load_settings()
    return settings, status_store(settings)


def _store_failed(settings: Any, exc: Exception) -> int:
    from .view import describe_store

    from ..logs import redact

    print(f"strategy-runner: could not read the {describe_store(settings)}: {type(exc).__name__}: {redact(str(exc))}",
          file=sys.stderr)
    return STORE_FAILED_EXIT


def _dump(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


def status(args: argparse.Namespace) -> int:
    from .view import describe_store, render, run_view

    settings, store = _settings_and_store()
    try:
        view = run_view(settings, store, args.run_id, with_mlflow=not args.no_mlflow)
    except Exception as exc:  # noqa: BLE001 - the store itself is unreachable: say which and why
        return _store_failed(settings, exc)
    if view is None:
        print(f"strategy-runner: no run {args.run_id!r} in the {describe_store(settings)} "
              "(check RUN_ID, and DYNAMODB_TABLE / RUNS_DIR point where the run was recorded)", file=sys.stderr)
        return NOT_FOUND_EXIT
    from ..logs import redact

    view = redact(view)  # a tracking URI may carry a password
    if args.json:
        _dump(view)
    else:
        print(render(view))
    return 0


def runs(args: argparse.Namespace) -> int:
    from .runs import list_runs, parse_since, render_table

    since = parse_since(args.since) if args.since else None
    settings, store = _settings_and_store()
    try:
        items = list_runs(store, status=args.status, since=since, trace_id=args.trace, limit=args.limit)
    except Exception as exc:  # noqa: BLE001
        return _store_failed(settings, exc)
    if args.json:
        _dump(items)
    else:
        print(render_table(items))
    return 0


def add_parsers(sub: Any) -> None:
    """Register ``status`` and ``runs`` on the CLI's subparsers."""
    st = sub.add_parser("status", help="one view of a run: status, timeline, error and what to do, "
                        "metrics, results, MLflow, logs")
    st.add_argument("run_id", metavar="RUN_ID")
    st.add_argument("--json", action="store_true", help="print the view as JSON (for scripts)")
    st.add_argument("--no-mlflow", action="store_true", help="do not ask MLflow")
    st.set_defaults(func=status)
    rn = sub.add_parser("runs", help="list runs by status (status index) or by trace (trace index)")
    rn.add_argument("--status", choices=[s.value for s in Status], help="only runs in this status")
    rn.add_argument("--since", help="created since: 30m, 24h, 7d, or an ISO date/time")
    rn.add_argument("--trace", metavar="TRACE_ID", help="every run with this trace_id")
    rn.add_argument("--limit", type=int, default=50, help="at most this many rows, newest first (default 50)")
    rn.add_argument("--json", action="store_true", help="print the items as JSON (for scripts)")
    rn.set_defaults(func=runs)
