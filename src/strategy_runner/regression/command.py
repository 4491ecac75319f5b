"""``strategy-runner regression``: run the suite, compare with baselines, report, gate.

Each case is a real run of the runner in its own process (``python -m strategy_runner
backtest`` with the case's environment and its own RUN_ID), exactly as a container runs
it, so the result cache, the status store and the report all take part.
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..settings import child_environment, load_settings
from .compare import ERROR, FAIL, MISSING, PASS, UPDATED, CaseResult, compare, explain, metrics_of
from .output import junit_xml, markdown, table
from .suite import Case, Suite, load_suite

#: Variables of the caller's environment that describe one run: each case sets its own.
PER_RUN_VARIABLES = ("RUN_ID", "TRADAI_RUN_ID", "TRACE_ID", "TASK_TOKEN", "STRATEGY", "STRATEGY_VERSION",
                     "CONFIG", "CONFIG_S3_PATH", "PAIRS", "TIMERANGE", "TIMEFRAME")
DEFAULT_SUITE = Path("regression/suite.toml")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", type=Path, default=DEFAULT_SUITE, help="suite file (TOML or JSON); default %(default)s")
    p.add_argument("--case", action="append", default=[], metavar="NAME", help="run only this case (repeatable)")
    p.add_argument("--update-baselines", action="store_true",
                   help="record this run's results as the new baselines (deliberately; commit them)")
    p.add_argument("--junit", type=Path, help="write JUnit XML here")
    p.add_argument("--markdown", type=Path, help="write a Markdown summary here (e.g. $GITHUB_STEP_SUMMARY)")
    p.add_argument("--runs-dir", type=Path, help="where case runs go (default: RUNS_DIR); the result cache lives here")
    p.add_argument("--no-cache", action="store_true", help="recompute every case (RESULT_CACHE=false)")
    p.add_argument("--track", action="store_true", help="log each case to MLflow too (default: TRACKING=false)")
    p.add_argument("--jobs", type=int, default=1, help="cases run at once (default %(default)s)")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per case (default %(default)s)")


def run_command(args: argparse.Namespace) -> int:
    suite = load_suite(args.suite)
    cases = suite.cases
    if args.case:
        unknown = sorted(set(args.case) - {c.name for c in cases})
        if unknown:
            print(f"strategy-runner regression: no case named {', '.join(unknown)} in {args.suite} "
                  f"(cases: {', '.join(c.name for c in cases)})", file=sys.stderr)
            return 2
        cases = [c for c in cases if c.name in args.case]
    runs_dir = (args.runs_dir or load_settings().runs_dir).resolve()
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(2)}"
    print(f"regression: {len(cases)} case(s) from {suite.path}, runs in {runs_dir}", file=sys.stderr)

    def one(case: Case) -> CaseResult:
        result = run_case(suite, case, runs_dir, f"regression-{stamp}-{case.name}"[:128],
                          cache=not args.no_cache, track=args.track, timeout=args.timeout,
                          update=args.update_baselines)
        print(f"regression: {case.name}: {result.status} ({result.seconds:.1f}s)", file=sys.stderr)
        return result

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(one, cases))
    print(table(results, suite.path))
    compared = write_comparison(results, runs_dir, f"regression-{stamp}", suite.path)
    if compared:
        print(f"regression: comparison of the cases: {compared}", file=sys.stderr)
    if args.junit:
        junit_xml(results, suite.path, args.junit)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(results, suite.path))
    return 0 if all(r.ok for r in results) else 1


def write_comparison(results: list[CaseResult], runs_dir: Path, name: str, suite_path: Path) -> Path | None:
    """<runs dir>/regression-<time>/comparison.html: the cases' metrics side by side and their
    equity curves; like a run's report, it never fails the suite."""
    from ..report.compare import Item, write_comparison as write

    items = []
    for r in results:
        run_dir = Path(r.results_dir) if r.results_dir else None
        has = run_dir is not None and (run_dir / "backtest-result.json").is_file()
        label = f"{r.case.name}: {r.case.strategy} {','.join(r.case.pairs)} {r.case.timerange} ({r.status})"
        items.append(Item(r.run_id or r.case.name, label, run_dir if has else None, r.error or r.status))
    try:
        return write(runs_dir / name, f"regression suite {suite_path}", items) if any(i.run_dir for i in items) else None
    except Exception as exc:  # noqa: BLE001 - the comparison is a view of results already stored
        print(f"regression: could not write the comparison report: {exc}", file=sys.stderr)
        return None


def case_environment(suite: Suite, case: Case, runs_dir: Path, run_id: str, cache: bool,
                     track: bool = False) -> dict[str, str]:
    env = {"RUN_ID": run_id, "RUNS_DIR": str(runs_dir), "STRATEGY": case.strategy, "CONFIG": case.config,
           "PAIRS": json.dumps(list(case.pairs)), "TIMERANGE": case.timerange, "TIMEFRAME": case.timeframe,
           "LOG_FORMAT": "json"}
    for var, value in (("STRATEGIES_DIR", suite.strategies_dir), ("CONFIGS_DIR", suite.configs_dir),
                       ("DATA_DIR", suite.data_dir), ("DATA_S3_PATH", suite.data_s3_path)):
        if value:
            env[var] = str(value)
    if not cache:
        env["RESULT_CACHE"] = "false"
    if not track:  # a regression case is a comparison, not an experiment worth a run in MLflow
        env["TRACKING"] = "false"
    env.update(case.env)
    return child_environment(env, drop=PER_RUN_VARIABLES)


def run_case(suite: Suite, case: Case, runs_dir: Path, run_id: str, *, cache: bool, timeout: float,
             update: bool, track: bool = False) -> CaseResult:
    started = time.monotonic()
    env = case_environment(suite, case, runs_dir, run_id, cache, track)
    result = CaseResult(case=case, status=ERROR, run_id=run_id, results_dir=str(runs_dir / run_id))
    try:
        proc = subprocess.run([sys.executable, "-m", "strategy_runner", "backtest"], env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        result.error = f"the run did not finish within {timeout:.0f}s"
        result.seconds = time.monotonic() - started
        return result
    result.seconds = time.monotonic() - started
    summary = _read(runs_dir / run_id / "backtest-result.json")
    if proc.returncode != 0 or summary is None:
        result.error = f"the run exited with code {proc.returncode}: {_last_error(proc.stderr)}"
        return result
    result.metrics = metrics_of(summary)
    result.cache_hit = bool((summary.get("cache") or {}).get("hit"))
    baseline_path = suite.baselines_dir / f"{case.name}.json"
    baseline = _read(baseline_path)
    if update:
        if baseline is not None:
            result.why = explain(baseline.get("identity") or {}, summary.get("identity") or {})
        write_baseline(baseline_path, case, summary)
        result.status = UPDATED
        return result
    if baseline is None:
        result.status = MISSING
        result.error = f"no baseline {baseline_path}"
        return result
    result.diffs, result.why = compare(suite, case, baseline, summary)
    result.status = FAIL if result.moved else PASS
    return result


def write_baseline(path: Path, case: Case, summary: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    identity = dict(summary.get("identity") or {})
    baseline = {
        "case": case.definition(),
        "metrics": metrics_of(summary),
        "identity": identity,
        "recorded_from_run": summary.get("run_id"),
        "backtest": {"start": summary.get("backtest_start"), "end": summary.get("backtest_end")},
    }
    path.write_text(json.dumps(baseline, indent=2, sort_keys=True) + "\n")


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _last_error(stderr: str) -> str:
    """The most telling line of a failed run's output (its last error event, else the last line)."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and event.get("level") == "error":
            return f"{event.get('error_type', '')}: {event.get('error') or event.get('event')}".strip(": ")
    return lines[-1][:500] if lines else "no output"
