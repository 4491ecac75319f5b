"""``strategy-runner sweep``:

    sweep SPEC [--jobs N]     run the sweep here (resumable), print its best items; writes
                              runs/<sweep id>/sweep-result.json and comparison.html
    sweep SPEC --aws          start it on Step Functions (SWEEP_STATE_MACHINE_ARN, RESULTS_BUCKET)
    sweep status SWEEP_ID     counts by status, failures with their error types, the best items
    sweep gather SWEEP_ID     write sweep-result.json (locally, and to the results bucket when set),
                              and comparison.html over the items whose results are here
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from .spec import SweepItem, load_spec


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="a grid of backtests from a sweep spec (TOML): run, status, gather",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("words", nargs="+", metavar="SPEC | status SWEEP_ID | gather SWEEP_ID")
    p.add_argument("--aws", action="store_true", help="start the sweep on Step Functions instead of running it here")
    p.add_argument("--jobs", type=int, help="items at once (default: what the cores and the memory estimate allow)")
    p.add_argument("--id", dest="sweep_id", help="the sweep id (default: the spec's name)")
    p.add_argument("--metric", help="rank by this headline metric (default: the spec's, else profit_total)")
    p.add_argument("--top", type=int, default=5, help="how many of the best items to print (default %(default)s)")
    p.add_argument("--timeout", type=float, default=7200.0, help="seconds per item (default %(default)s)")
    p.add_argument("--json", action="store_true", help="status: print sweep-result.json's document")
    p.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    from ..settings import load_settings

    settings = load_settings()
    verb, rest = args.words[0], args.words[1:]
    if verb in ("status", "gather"):
        if len(rest) != 1:
            raise ValidationError(f"usage: strategy-runner sweep {verb} SWEEP_ID")
        return _status(settings, rest[0], args, write=verb == "gather")
    if rest:
        raise ValidationError(f"sweep takes one spec file, got {' '.join(args.words)}")
    spec = load_spec(Path(verb), sweep_id=args.sweep_id)
    if args.metric:
        spec = type(spec)(sweep_id=spec.sweep_id, path=spec.path, items=spec.items, metric=args.metric)
    return _start_on_aws(settings, spec) if args.aws else _run_here(settings, spec, args)


def _run_here(settings, spec, args: argparse.Namespace) -> int:
    from . import result
    from .aws import save_items_locally
    from .local import default_jobs, run_items

    jobs = args.jobs or default_jobs(spec, settings)
    save_items_locally(spec, settings.runs_dir)
    total, done, lock = len(spec.items), [0], threading.Lock()
    print(f"sweep {spec.sweep_id}: {total} items from {spec.path}, {jobs} at a time, runs in {settings.runs_dir}",
          file=sys.stderr)

    def report(item: SweepItem, recorded: dict[str, Any], seconds: float, skipped: bool) -> None:
        with lock:
            done[0] += 1
            how = "kept from an earlier run" if skipped else f"{seconds:.1f} s"
            print(f"[{done[0]}/{total}] {result.line(item, recorded, spec.metric)} ({how})", file=sys.stderr)

    started = time.monotonic()
    recorded = run_items(spec, settings, jobs=jobs, timeout=args.timeout, report=report)
    seconds = time.monotonic() - started
    table = result.rows(spec.items, recorded)
    path = result.write(spec, table, settings.runs_dir, seconds)
    compared = result.comparison(spec.sweep_id, spec.metric, table, settings.runs_dir)
    completed = sum(r["status"] == "COMPLETED" for r in table)
    print(f"sweep {spec.sweep_id}: {completed}/{total} completed in {seconds:.1f} s "
          f"({total / max(seconds, 1e-9) * 60:.1f} items/min); {path}")
    if compared:
        print(f"comparison: {compared}")
    _print_table(table, spec.metric, args.top)
    return 0 if completed == total else 1


def _start_on_aws(settings, spec) -> int:
    from .. import aws
    from .aws import start

    if not settings.results_bucket or not settings.sweep_state_machine_arn:
        raise ValidationError("sweep --aws needs RESULTS_BUCKET (for items.json) and SWEEP_STATE_MACHINE_ARN "
                              "(the deployed backtest-sweep workflow)")
    started = start(spec, s3=aws.client(settings, "s3"), sfn=aws.client(settings, "stepfunctions"),
                    bucket=settings.results_bucket, prefix=settings.results_prefix,
                    state_machine_arn=settings.sweep_state_machine_arn)
    print(f"sweep {spec.sweep_id}: {len(spec.items)} items in {started['items']}")
    print(f"execution {started['execution_arn']}")
    print(f"follow it: strategy-runner sweep status {spec.sweep_id}")
    return 0


def _status(settings, sweep_id: str, args: argparse.Namespace, *, write: bool) -> int:
    from .. import aws
    from ..adapters import status_store
    from . import result
    from .aws import items_key, load_items

    s3 = aws.client(settings, "s3") if settings.results_bucket else None
    items = load_items(sweep_id, runs_dir=settings.runs_dir, s3=s3, bucket=settings.results_bucket,
                       prefix=settings.results_prefix)
    store = status_store(settings)
    table = result.rows(items, [store.get(i.run_id) or {} for i in items])
    metric = args.metric or "profit_total"
    doc = result.document(sweep_id, metric, table)
    if write:
        path = settings.runs_dir / sweep_id / "sweep-result.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2, default=str))
        print(path)
        compared = result.comparison(sweep_id, metric, table, settings.runs_dir)
        if compared:
            print(compared)
        if s3 is not None:
            key = items_key(settings.results_prefix, sweep_id).replace("items.json", "sweep-result.json")
            s3.put_object(Bucket=settings.results_bucket, Key=key, Body=path.read_bytes(), ContentType="application/json")
            print(f"s3://{settings.results_bucket}/{key}")
        return 0
    if args.json:
        print(json.dumps(doc, indent=2, default=str))
        return 0
    counts = ", ".join(f"{status} {n}" for status, n in sorted(doc["counts"].items()))
    print(f"sweep {sweep_id}: {len(items)} items: {counts}")
    _print_table(table, metric, args.top)
    return 0


def _print_table(table: list[dict[str, Any]], metric: str, top: int) -> None:
    from .result import best

    for rank, row in enumerate(best(table, metric, top), start=1):
        params = " ".join(f"{k}={v}" for k, v in row["parameters"].items())
        print(f"  {rank}. {row['run_id']}  {metric}={row['metrics'][metric]:.4f}  "
              f"{row['strategy']} {','.join(row['pairs'])} {row['timerange']} {params}")
    for row in table:
        if row["status"] not in ("COMPLETED", None):
            error = row["error"] or {}
            print(f"  {row['status'].lower()}: {row['run_id']} {error.get('type')}: {(error.get('message') or '')[:200]}")
