"""Result cache benchmark: the regression suite run cold, then again with nothing changed.

    python bench/cache.py [--suite regression/suite.toml] [--repeat 1]

Both passes are real ``strategy-runner regression`` processes over a fresh runs
directory: the cold pass computes every case (and fills RUNS_DIR/.cache/), the cached
pass finds every key and copies the stored result. Prints the times and their ratio and
writes bench/out/cache-<UTC time>.json (and bench/out/cache.json).

By default the cases run as ``strategy-runner regression`` runs them: without MLflow
tracking. ``--mlflow server`` (a real ``mlflow server`` on loopback, as deployed) or
``--mlflow sqlite`` passes ``--track``, so every run, a hit too, is tracked and both passes
pay for it; the tracking time is read off each run's log and also shown subtracted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from strategy_runner.settings import child_environment  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from stack import mlflow_server  # noqa: E402

DROP = ("RUN_ID", "TRADAI_RUN_ID", "RESULTS_BUCKET", "DYNAMODB_TABLE", "TASK_TOKEN", "RESULT_CACHE")


def regression(suite: Path, runs: Path, junit: Path, env: dict[str, str], track: bool) -> tuple[float, int, dict]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "strategy_runner", "regression", "--suite", str(suite),
                           "--runs-dir", str(runs), "--junit", str(junit), *(["--track"] if track else [])],
                          env=env, cwd=runs.parent, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        print(proc.stdout, proc.stderr[-3000:], sep="\n", file=sys.stderr)
    import xml.etree.ElementTree as ET

    cases = {}
    for tc in ET.parse(junit).getroot().iter("testcase"):
        out = tc.findtext("system-out") or ""
        run_id = out.splitlines()[0].removeprefix("run_id: ") if out else ""
        cases[tc.get("name")] = {"seconds": float(tc.get("time")), "cache_hit": "cache_hit: True" in out,
                                 "run_id": run_id, **phases(runs / run_id / "run.log")}
    return seconds, proc.returncode, cases


def phases(log: Path) -> dict[str, float | None]:
    """From the run's log timestamps: MLflow tracking time (its start and finish steps) and
    the supervisor's whole span, so the cache's own effect can be told from tracking's cost."""
    events = []
    for line in log.read_text().splitlines() if log.is_file() else []:
        try:
            e = json.loads(line)
            events.append((datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp(), e["event"]))
        except (ValueError, KeyError, TypeError):
            continue
    if not events:
        return {"span_s": None, "tracking_s": None}
    span = events[-1][0] - events[0][0]
    tracking = 0.0
    for i, (t, name) in enumerate(events):
        if name in ("MLflow run started", "MLflow run finished") and i:
            tracking += t - events[i - 1][0]
    return {"span_s": round(span, 3), "tracking_s": round(tracking, 3) if tracking else None}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", type=Path, default=ROOT / "regression" / "suite.toml")
    p.add_argument("--repeat", type=int, default=1, help="cold+cached pairs to measure (fresh runs dir each)")
    p.add_argument("--mlflow", choices=("off", "server", "sqlite"), default="off",
                   help="off: the regression command's default (no tracking); server/sqlite: --track against it")
    args = p.parse_args()
    rows = []
    for i in range(args.repeat):
        scratch = Path(tempfile.mkdtemp(prefix="bench-cache-"))
        try:
            track = args.mlflow != "off"
            with (mlflow_server(scratch) if args.mlflow == "server"
                  else contextlib.nullcontext(f"sqlite:///{scratch}/mlflow.db")) as tracking_uri:
                env = child_environment({"MLFLOW_TRACKING_URI": tracking_uri, "LOG_FORMAT": "json"}, drop=DROP)
                runs = scratch / "runs"
                cold_s, cold_rc, cold_cases = regression(args.suite.resolve(), runs, scratch / "cold.xml", env, track)
                cached_s, cached_rc, cached_cases = regression(args.suite.resolve(), runs, scratch / "cached.xml", env, track)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        rows.append({"cold_s": round(cold_s, 3), "cached_s": round(cached_s, 3),
                     "ratio": round(cached_s / cold_s, 4), "cold_rc": cold_rc, "cached_rc": cached_rc,
                     "cold_cases": cold_cases, "cached_cases": cached_cases,
                     "all_cached_hits": all(c["cache_hit"] for c in cached_cases.values()),
                     "no_cold_hits": not any(c["cache_hit"] for c in cold_cases.values())})
        print(f"pass {i + 1}: cold {cold_s:.1f}s, cached {cached_s:.1f}s, "
              f"cached/cold {cached_s / cold_s:.2f} ({cold_s / cached_s:.1f}x faster)")
        for name in cold_cases:
            c, h = cold_cases[name], cached_cases[name]
            print(f"  {name:<46} cold {c['seconds']:6.1f}s (tracking {c['tracking_s'] or 0:4.1f}s)   "
                  f"cached {h['seconds']:6.1f}s (tracking {h['tracking_s'] or 0:4.1f}s)  hit={h['cache_hit']}")
        untracked = {k: sum(c["seconds"] - (c["tracking_s"] or 0) for c in cases.values())
                     for k, cases in (("cold", cold_cases), ("cached", cached_cases))}
        rows[-1]["without_tracking_s"] = {k: round(v, 3) for k, v in untracked.items()}
        rows[-1]["without_tracking_ratio"] = round(untracked["cached"] / untracked["cold"], 4)
        print(f"  less MLflow tracking time: cold {untracked['cold']:.1f}s, cached {untracked['cached']:.1f}s, "
              f"ratio {untracked['cached'] / untracked['cold']:.2f}")
    load = os.getloadavg()
    result = {"suite": str(args.suite), "mlflow": args.mlflow, "cases": len(rows[0]["cold_cases"]), "passes": rows,
              "cold_s": min(r["cold_s"] for r in rows), "cached_s": min(r["cached_s"] for r in rows),
              "loadavg_after": [round(x, 2) for x in load], "cpu_count": os.cpu_count(),
              "measured_at": datetime.now(UTC).isoformat()}
    result["ratio"] = round(result["cached_s"] / result["cold_s"], 4)
    result["without_tracking_ratio"] = min(r["without_tracking_ratio"] for r in rows)
    print(f"regression suite ({result['cases']} cases, MLflow {args.mlflow}): cold {result['cold_s']:.1f}s, cached {result['cached_s']:.1f}s, "
          f"ratio {result['ratio']:.2f}  (load average {load[0]:.1f} on {os.cpu_count()} cores)")
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for name in (f"cache-{stamp}.json", "cache.json"):
        (out / name).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out / f'cache-{stamp}.json'}")
    ok = all(r["cold_rc"] == 0 and r["cached_rc"] == 0 and r["all_cached_hits"] and r["no_cold_hits"] for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
