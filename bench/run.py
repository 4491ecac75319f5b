"""Performance harness: the runner against plain ``freqtrade backtesting``, and the lifecycle's timings.

    python bench/run.py            # 10 pairs x 1 year of 5m candles (10 pair-years)
    python bench/run.py --quick    # 2 pairs x 1 month: a smoke run in about a minute

Prints a table and writes bench/out/bench-<UTC time>.json (and bench/out/latest.json).

Measured:
- runner vs plain Freqtrade on identical data, config and markets (plain Freqtrade runs
  through bench/plain_freqtrade.py: the runner's offline markets seam, then Freqtrade's own
  ``main(["backtesting", ...])``): wall time and peak RSS of the whole process tree
  (sampled every 50 ms with psutil), trade count and profit checked equal;
  the runner with FAST_PRECISION=false and RESULT_CACHE=false is the overhead-only figure;
- data load: Freqtrade's get_tick_size_over_time vs engine.fast_precision on the same candles;
- cold run vs cached rerun (RESULT_CACHE);
- process start -> RUNNING in the status store; the largest gap between heartbeats during
  a CPU-bound backtest (HEARTBEAT_INTERVAL_SECONDS=1); SIGTERM -> terminal status, sent
  during data load and during the backtest loop.
Targets (issue 8) are printed next to each figure. Other processes on the machine are
sampled too (load average before and after) so contention is visible in the JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from strategy_runner.engine.config import effective_config, read_json  # noqa: E402
from strategy_runner.lifecycle import is_terminal  # noqa: E402
from strategy_runner.sample_data import SamplePair, generate  # noqa: E402
from strategy_runner.settings import child_environment  # noqa: E402

STRATEGY = "EmaCrossSpot"
# Rough prices of early December 2023, so each pair's candles have realistic digit counts.
START_PRICES = {"ADA": 0.38, "AVAX": 21.0, "BNB": 228.0, "BTC": 38_700.0, "DOGE": 0.085, "DOT": 5.3,
                "ETH": 2_090.0, "LINK": 14.9, "LTC": 68.0, "SOL": 59.0, "TRX": 0.104, "XRP": 0.61}
# What a runner child must not inherit from the shell (the bench uses local stores only).
DROP = ("DYNAMODB_TABLE", "RESULTS_BUCKET", "TASK_TOKEN", "MLFLOW_TRACKING_URI", "AWS_ENDPOINT_URL",
        "RUN_ID", "TRADAI_RUN_ID", "TRACE_ID", "PAIRS", "TIMERANGE", "CONFIG", "CONFIG_S3_PATH", "DATA_S3_PATH",
        "HEARTBEAT_INTERVAL_SECONDS", "FAST_PRECISION", "RESULT_CACHE", "LOG_LEVEL", "MEMORY_LIMIT_MB")
TARGETS = {"wall_ratio": 0.70, "stock_wall_ratio": 1.03, "rss_ratio": 1.05, "start_to_running_s": 0.5,
           "heartbeat_slack_s": 2.0, "sigterm_to_terminal_s": 5.0, "fixed_overhead_s": 1.0,
           "worker_end_to_completed_s": 0.5}  # issue 15; worker end -> COMPLETED is 0.5 s plus the upload
FIXED_PAIR, FIXED_TIMERANGE = "BTC/USDT", "20240901-20240915"  # 1 pair x 2 weeks


# --- data and config ---------------------------------------------------------------------
def spot_pairs(n: int) -> list[SamplePair]:
    markets = json.loads((ROOT / "configs" / "markets" / "binance.json").read_text())["markets"]
    spot = sorted(k for k, m in markets.items() if m["type"] == "spot")
    if n > len(spot):
        raise SystemExit(f"--pairs {n}: the markets snapshot has only {len(spot)} spot pairs")
    pairs = []
    for symbol in spot[:n]:
        m = markets[symbol]
        base = symbol.split("/")[0]
        pairs.append(SamplePair(symbol, START_PRICES.get(base, 1000 * m["precision"]["price"]),
                                m["precision"]["price"], m["precision"]["amount"]))
    return pairs


def ensure_data(data_dir: Path, pairs: list[SamplePair], start: str, end: str) -> None:
    marker = data_dir / ".generated.json"
    wanted = {"pairs": [p.pair for p in pairs], "start": start, "end": end}
    if marker.exists():
        have = json.loads(marker.read_text())
        if set(wanted["pairs"]) <= set(have["pairs"]) and have["start"] == start and have["end"] == end:
            return
        wanted["pairs"] = sorted(set(wanted["pairs"]) | set(have["pairs"]))
        pairs = spot_pairs_by_name(wanted["pairs"])
    print(f"generating candles for {len(pairs)} pairs {start}..{end} into {data_dir}", flush=True)
    generate(data_dir, start=start, end=end, spot=tuple(pairs), futures=())
    marker.write_text(json.dumps(wanted))


def spot_pairs_by_name(names: list[str]) -> list[SamplePair]:
    every = {p.pair: p for p in spot_pairs(len(START_PRICES))}
    return [every[n] for n in names]


# --- measuring a process tree ------------------------------------------------------------
class TreeSampler:
    """Peak RSS of a process and all its descendants, sampled every ``period`` seconds."""

    def __init__(self, pid: int, period: float = 0.05):
        self.root = psutil.Process(pid)
        self.period = period
        self.peak_bytes = 0
        self.peak_single_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = 0
            for p in procs:
                try:
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                self.peak_single_bytes = max(self.peak_single_bytes, rss)
            self.peak_bytes = max(self.peak_bytes, total)
            self._stop.wait(self.period)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> dict[str, Any]:
    """Wall time, peak tree RSS and CPU time (user + system of the process and every
    descendant it waited for: on a shared machine the figure contention does not inflate)."""
    started, cpu_before = time.monotonic(), _children_cpu_s()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        sampler = TreeSampler(proc.pid)
        proc.wait()
    wall = time.monotonic() - started
    sampler.stop()
    return {"wall_s": round(wall, 3), "cpu_s": round(_children_cpu_s() - cpu_before, 3),
            "peak_rss_mb": round(sampler.peak_bytes / 2**20, 1),
            "peak_single_process_rss_mb": round(sampler.peak_single_bytes / 2**20, 1), "exit_code": proc.returncode,
            "log": str(log)}


# --- the runs ----------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.out = Path(args.out).resolve()
        self.data_dir = self.out / "data"
        self.runs_dir = self.out / "runs"
        self.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        self.pairs = spot_pairs(args.pairs)
        self.pair_names = [p.pair for p in self.pairs]
        self.mlflow_uri = f"sqlite:///{self.out / 'mlflow.db'}"

    def prepare_mlflow(self) -> None:
        """Create the embedded MLflow store once, untimed: in production MLflow is a running
        server, so its one-off schema migration must not land on a measured run."""
        ready = self.out / ".mlflow-ready"
        if ready.exists():
            return
        (self.out / "mlflow.db").unlink(missing_ok=True)  # a migration killed half-way leaves it broken
        code = ("import sys; from mlflow.tracking import MlflowClient; "
                "MlflowClient(tracking_uri=sys.argv[1]).search_experiments()")
        subprocess.run([sys.executable, "-c", code, self.mlflow_uri], check=True, timeout=600, cwd=self.out,
                       env=child_environment({}, drop=DROP), capture_output=True)
        ready.write_text(self.mlflow_uri)

    def runner_env(self, run_id: str, **extra: str) -> dict[str, str]:
        overrides = {
            "RUN_ID": run_id, "PAIRS": ",".join(extra.pop("pairs", None) or self.pair_names),
            "TIMERANGE": extra.pop("timerange", None) or self.args.timerange, "STRATEGY": STRATEGY,
            "DATA_DIR": str(self.data_dir), "RUNS_DIR": extra.pop("runs_dir", None) or str(self.runs_dir),
            "STRATEGIES_DIR": str(ROOT / "strategies"), "CONFIGS_DIR": str(ROOT / "configs"),
            "LOG_FORMAT": "json", "MLFLOW_TRACKING_URI": self.mlflow_uri, **extra,
        }
        return child_environment(overrides, drop=DROP)

    def runner_cmd(self) -> list[str]:
        return [sys.executable, "-m", "strategy_runner", "backtest"]

    def run_runner(self, label: str, **extra: str) -> dict[str, Any]:
        run_id = f"bench-{self.stamp}-{label}"
        popen_wall = time.time()
        env = self.runner_env(run_id, **extra)
        result = timed(self.runner_cmd(), env, self.out, self.out / f"{run_id}.out")
        run_dir = Path(env["RUNS_DIR"]) / run_id
        result["run_id"] = run_id
        summary = _read(run_dir / "backtest-result.json") or {}
        metrics = summary.get("metrics", {})
        result["trades"] = metrics.get("total_trades")
        result["profit_total_abs"] = metrics.get("profit_total_abs")
        result["durations"] = summary.get("durations")
        log = (run_dir / "run.log").read_text() if (run_dir / "run.log").exists() else ""
        result["cache_hit"] = "result reused from the cache" in log
        result["phases_s"] = _phases(log, popen_wall)
        result["fast_precision_used"] = "price precision inferred vectorised" in log
        return result

    def run_plain(self, pairs: list[str] | None = None, timerange: str | None = None) -> dict[str, Any]:
        plain = self.out / f"plain-{self.stamp}"
        shutil.rmtree(plain / "results", ignore_errors=True)  # one result zip: this run's
        (plain / "user_data").mkdir(parents=True, exist_ok=True)
        (plain / "results").mkdir(exist_ok=True)
        timerange = timerange or self.args.timerange
        base = read_json(ROOT / "configs" / "base.json", "config")
        config = effective_config(base, None, strategy=STRATEGY, timeframe="5m", timerange=timerange,
                                  pairs=tuple(pairs or self.pair_names))
        (plain / "config.json").write_text(json.dumps(config, indent=2))
        cmd = [sys.executable, str(ROOT / "bench" / "plain_freqtrade.py"),
               str(ROOT / "configs" / "markets" / "binance.json"),
               "backtesting", "--config", str(plain / "config.json"), "--strategy", STRATEGY,
               "--strategy-path", str(ROOT / "strategies"), "--datadir", str(self.data_dir),
               "--userdir", str(plain / "user_data"), "--export", "trades",
               "--backtest-directory", str(plain / "results"), "--cache", "none",
               "--timerange", timerange]
        env = child_environment({}, drop=DROP)
        result = timed(cmd, env, plain, plain / "freqtrade.out")
        stats = _plain_stats(plain / "results", STRATEGY)
        result["trades"] = stats.get("total_trades")
        result["profit_total_abs"] = stats.get("profit_total_abs")
        result["config"] = str(plain / "config.json")
        return result

    # --- fixed overhead: a tracked short run on real services ---------------------------
    def overhead(self, rounds: int) -> dict[str, Any]:
        """1 pair x 2 weeks: plain Freqtrade against the runner tracked on moto's server
        (DynamoDB, S3) and a real ``mlflow server``, interleaved; each by its median round."""
        from stack import aws_env, mlflow_server, moto_server

        root = self.out / f"stack-{self.stamp}"
        root.mkdir(parents=True, exist_ok=True)
        plain_runs: list[dict[str, Any]] = []
        runs: list[dict[str, Any]] = []
        with moto_server(root) as endpoint, mlflow_server(root) as mlflow_uri:
            aws = aws_env(endpoint, f"bench-{self.stamp}", f"bench-{self.stamp.lower()}")
            for n in range(rounds):
                plain_runs.append(self.run_plain(pairs=[FIXED_PAIR], timerange=FIXED_TIMERANGE))
                run = self.run_runner(f"fixed-r{n}", pairs=[FIXED_PAIR], timerange=FIXED_TIMERANGE,
                                      RESULT_CACHE="false", MLFLOW_TRACKING_URI=mlflow_uri,
                                      EXPERIMENT_NAME="bench-fixed", **aws)
                runs.append(run)
        median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
        walls = [r["wall_s"] for r in runs]
        plain_walls = [r["wall_s"] for r in plain_runs]
        cpu, plain_cpu = median([r["cpu_s"] for r in runs]), median([r["cpu_s"] for r in plain_runs])
        ph = [r.get("phases_s") or {} for r in runs]
        post = [p["worker_done_to_completed"] for p in ph if p.get("worker_done_to_completed") is not None]
        upload = [p["upload_s"] for p in ph if p.get("upload_s") is not None]
        return {
            "pair": FIXED_PAIR, "timerange": FIXED_TIMERANGE, "rounds": rounds,
            "plain_wall_s": median(plain_walls), "runner_wall_s": median(walls),
            "overhead_s": round(median(walls) - median(plain_walls), 3),
            "plain_cpu_s": plain_cpu, "runner_cpu_s": cpu, "overhead_cpu_s": round(cpu - plain_cpu, 3),
            "worker_end_to_completed_s": median(post) if post else None,
            "upload_s": median(upload) if upload else None,
            "start_to_running_s": median([p["start_to_running"] for p in ph if p.get("start_to_running") is not None]),
            "mlflow_start_s": median([p.get("mlflow_start") or 0 for p in ph]),
            "mlflow_finish_s": median([p.get("mlflow_finish") or 0 for p in ph]),
            "exit_codes": [r["exit_code"] for r in runs], "plain_walls_s": plain_walls, "runner_walls_s": walls,
        }

    # --- lifecycle timings ------------------------------------------------------------
    def lifecycle(self) -> dict[str, Any]:
        """Start -> RUNNING and heartbeat gaps on a CPU-bound run (HEARTBEAT_INTERVAL_SECONDS=1)."""
        run_id = f"bench-{self.stamp}-heartbeat"
        env = self.runner_env(run_id, pairs=self.pair_names[:2], timerange=self.args.lifecycle_timerange,
                              HEARTBEAT_INTERVAL_SECONDS="1", RESULT_CACHE="false")
        status_file = self.runs_dir / ".status" / f"{run_id}.json"
        popen_wall = time.time()
        started = time.monotonic()
        with open(self.out / f"{run_id}.out", "w") as out:
            proc = subprocess.Popen(self.runner_cmd(), env=env, cwd=self.out, stdout=out, stderr=subprocess.STDOUT)
            seen_running = None
            beats: set[str] = set()
            while True:
                item = _read(status_file)
                if item and item.get("status") == "RUNNING":
                    if seen_running is None:
                        seen_running = time.monotonic() - started
                    if item.get("heartbeat_at"):
                        beats.add(item["heartbeat_at"])
                if proc.poll() is not None:
                    break
                time.sleep(0.002 if seen_running is None else 0.05)
        final = _read(status_file) or {}
        stamps = sorted(_ts(b) for b in beats)
        gaps = [round(b - a, 3) for a, b in zip(stamps, stamps[1:], strict=False)]
        started_at = _ts(final.get("started_at")) if final.get("started_at") else None
        return {
            "run_id": run_id, "exit_code": proc.returncode, "status": final.get("status"),
            "start_to_running_polled_s": round(seen_running, 3) if seen_running is not None else None,
            "start_to_started_at_s": round(started_at - popen_wall, 3) if started_at else None,
            "heartbeats": len(stamps), "heartbeat_interval_s": 1.0,
            "max_heartbeat_gap_s": max(gaps) if gaps else None,
            "heartbeat_gaps_s": gaps,
            "wall_s": round(time.monotonic() - started, 3),
        }

    def sigterm(self, phase: str, loaded: bool = False) -> dict[str, Any]:
        """SIGTERM the supervisor once the run is in ``phase`` (startup: claimed, no worker
        progress yet); time until the item is terminal. ``loaded``: a busy process per CPU
        competes with the run meanwhile."""
        run_id = f"bench-{self.stamp}-sigterm-{phase}{'-loaded' if loaded else ''}"
        env = self.runner_env(run_id, pairs=self.pair_names[:2], timerange=self.args.lifecycle_timerange,
                              RESULT_CACHE="false")
        status_file = self.runs_dir / ".status" / f"{run_id}.json"
        progress_file = self.runs_dir / run_id / ".worker" / "progress.json"
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)] \
            if loaded else []
        try:
            return self._sigterm(phase, run_id, env, status_file, progress_file) | {"loaded": loaded}
        finally:
            for hog in hogs:
                hog.kill()
                hog.wait()

    def _sigterm(self, phase: str, run_id: str, env: dict[str, str], status_file: Path,
                 progress_file: Path) -> dict[str, Any]:
        with open(self.out / f"{run_id}.out", "w") as out:
            proc = subprocess.Popen(self.runner_cmd(), env=env, cwd=self.out, stdout=out, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and proc.poll() is None:
                progress = _read(progress_file) or {}
                if phase == "startup" and (_read(status_file) or {}).get("status") == "RUNNING" and not progress:
                    break
                if progress.get("phase", "").startswith(phase) or (phase == "data_load" and progress):
                    break
                time.sleep(0.005 if phase == "startup" else 0.02)
            at_phase = (_read(progress_file) or {}).get("phase")
            if proc.poll() is not None:
                return {"phase": phase, "error": "the run ended before the phase was reached"}
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            terminal_after = None
            while time.monotonic() - sent < 60:
                item = _read(status_file) or {}
                if is_terminal(item.get("status")):
                    terminal_after = time.monotonic() - sent
                    break
                time.sleep(0.01)
            proc.wait(60)
        item = _read(status_file) or {}
        return {"phase": phase, "worker_phase_when_signalled": at_phase,
                "sigterm_to_terminal_s": round(terminal_after, 3) if terminal_after is not None else None,
                "sigterm_to_exit_s": round(time.monotonic() - sent, 3), "exit_code": proc.returncode,
                "status": item.get("status"), "error_type": item.get("error_type"),
                "retryable": item.get("retryable")}

    def precision(self) -> dict[str, Any]:
        """Freqtrade's get_tick_size_over_time vs engine.fast_precision on the run's candles."""
        import pandas as pd
        from freqtrade.data.btanalysis.historic_precision import get_tick_size_over_time as stock

        from strategy_runner.engine.fast_precision import get_tick_size_over_time as fast

        start, end = self.args.timerange.split("-")
        t_stock = t_fast = 0.0
        rows = 0
        for pair in self.pair_names:
            df = pd.read_feather(self.data_dir / f"{pair.replace('/', '_')}-5m.feather")
            df = df[(df["date"] >= pd.Timestamp(start, tz="UTC") - timedelta(hours=5))
                    & (df["date"] < pd.Timestamp(end, tz="UTC"))].reset_index(drop=True)
            rows += len(df)
            a, b = df.copy(), df.copy()
            t0 = time.perf_counter()
            expected = stock(a)
            t1 = time.perf_counter()
            got = fast(b)
            t2 = time.perf_counter()
            pd.testing.assert_series_equal(got, expected)
            pd.testing.assert_frame_equal(a, b)
            t_stock += t1 - t0
            t_fast += t2 - t1
        return {"rows": rows, "stock_s": round(t_stock, 3), "fast_s": round(t_fast, 3),
                "speedup": round(t_stock / t_fast, 1) if t_fast else None, "identical": True}


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# Where the runner's wall time goes, from its own run.log: each event's first time after Popen.
PHASE_EVENTS = ("run started", "worker started", "backtest finished", "run completed")
MLFLOW_START_EVENTS = ("MLflow run started", "MLflow tracking unavailable; the backtest goes on without it")
MLFLOW_FINISH_EVENTS = ("MLflow run finished", "MLflow logging incomplete; the run's result is unaffected")


def _phases(log: str, popen_wall: float) -> dict[str, float | None]:
    first: dict[str, float] = {}
    upload: dict[str, Any] = {}
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        event = entry.get("event")
        if event in MLFLOW_START_EVENTS:
            event = "mlflow started"
        elif event in MLFLOW_FINISH_EVENTS:
            event = "mlflow finished"
        if event == "run completed":
            upload = entry
        if event not in first and entry.get("timestamp"):
            first[event] = _ts(entry["timestamp"]) - popen_wall
    marks = [first.get(e) for e in PHASE_EVENTS]
    names = ("start_to_running", "running_to_worker", "worker", "worker_done_to_completed")
    out: dict[str, float | None] = {}
    previous = 0.0
    for name, mark in zip(names, marks, strict=True):
        out[name] = round(mark - previous, 3) if mark is not None and previous is not None else None
        previous = mark
    # The MLflow steps (child processes): start right after RUNNING, finish after the worker.
    if "mlflow started" in first and "run started" in first:
        out["mlflow_start"] = round(first["mlflow started"] - first["run started"], 3)
    out["upload_s"] = upload.get("upload_s")
    if "mlflow finished" in first and "backtest finished" in first:
        out["mlflow_finish"] = round(first["mlflow finished"] - first["backtest finished"], 3)
    return out


def _plain_stats(results: Path, strategy: str) -> dict[str, Any]:
    zips = sorted(results.glob("backtest-result-*.zip"))
    if not zips:
        return {}
    with zipfile.ZipFile(zips[-1]) as z:
        name = next(n for n in z.namelist() if n.endswith(".json") and "_config" not in n
                    and "_market_change" not in n and "_wallet" not in n)
        stats = json.loads(z.read(name))
    return stats["strategy"][strategy]


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def _mark(ok: bool | None) -> str:
    return "-" if ok is None else ("ok" if ok else "MISSED")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="2 pairs x 1 month (smoke run)")
    p.add_argument("--pairs", type=int, default=None, help="number of spot pairs (default 10; quick 2)")
    p.add_argument("--timerange", default=None, help="YYYYMMDD-YYYYMMDD (default 20240101-20250101; quick one month)")
    p.add_argument("--lifecycle-timerange", default=None, help="2 pairs, CPU-bound: heartbeats and SIGTERM")
    p.add_argument("--skip", default="",
                   help="comma list of parts to skip: overhead,compare,stock,cache,lifecycle,sigterm,precision")
    p.add_argument("--repeat", type=int, default=1, help="rounds of plain/runner/runner-stock (fastest reported)")
    p.add_argument("--out", default=str(ROOT / "bench" / "out"))
    p.add_argument("--tracking", choices=("server", "sqlite"), default="server",
                   help="the runner's MLflow: a real `mlflow server` (as deployed) or the embedded sqlite store")
    args = p.parse_args(argv)
    args.pairs = args.pairs or (2 if args.quick else 10)
    args.timerange = args.timerange or ("20240901-20241001" if args.quick else "20240101-20250101")
    args.lifecycle_timerange = args.lifecycle_timerange or ("20240901-20241001" if args.quick else "20240601-20241001")

    bench = Bench(args)
    bench.out.mkdir(parents=True, exist_ok=True)
    ensure_data(bench.data_dir, bench.pairs, "2023-12-01", "2025-01-01")
    with contextlib.ExitStack() as services:
        if args.tracking == "server":  # as deployed: the runner talks to it over REST, no mlflow import
            from stack import mlflow_server

            root = bench.out / f"mlflow-{bench.stamp}"
            root.mkdir(parents=True, exist_ok=True)
            bench.mlflow_uri = services.enter_context(mlflow_server(root))
        else:
            bench.prepare_mlflow()
        return measure(args, bench)


def measure(args: argparse.Namespace, bench: Bench) -> int:
    skip = set(filter(None, args.skip.split(",")))
    report: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(), "pairs": bench.pair_names, "timerange": args.timerange,
        "pair_years": round(len(bench.pair_names) * _years(args.timerange), 2), "strategy": STRATEGY,
        "machine": {"cpus": psutil.cpu_count(), "load_avg_before": [round(x, 2) for x in os.getloadavg()],
                    "memory_gb": round(psutil.virtual_memory().total / 2**30, 1)},
        "targets": TARGETS, "tracking": args.tracking,
    }

    def step(name: str, fn: Any) -> Any:
        print(f"... {name}", flush=True)
        return fn()

    # The lifecycle runs go first: they also create the embedded MLflow store (bench/out/mlflow.db),
    # so its one-off migration does not land on the measured runs.
    if "lifecycle" not in skip:
        report["lifecycle"] = step("lifecycle: start -> RUNNING, heartbeat gaps", bench.lifecycle)
    if "sigterm" not in skip:
        report["sigterm"] = [step(f"SIGTERM during {ph}{' (loaded)' if loaded else ''}",
                                  lambda ph=ph, loaded=loaded: bench.sigterm(ph, loaded))
                             for loaded in (False, True) for ph in ("startup", "data_load", "backtest")]
    if "overhead" not in skip:
        report["overhead"] = step("fixed overhead: 1 pair x 2 weeks, tracked on moto + mlflow server",
                                  lambda: bench.overhead(max(3, args.repeat)))
    if "precision" not in skip:
        report["precision"] = step("data load: stock vs fast precision", bench.precision)
    if "compare" not in skip:
        # Rounds interleave plain / runner / runner-stock so contention hits all alike; each
        # variant is reported by its fastest round. Later rounds use their own RUNS_DIR so the
        # runner's result cache starts cold every time.
        rounds: dict[str, list[dict[str, Any]]] = {"plain": [], "runner": [], "runner_stock_precision": []}
        for n in range(1, args.repeat + 1):
            runs_dir = str(bench.out / f"runs-{bench.stamp}-r{n}")
            rounds["plain"].append(step(f"[{n}/{args.repeat}] plain freqtrade backtesting", bench.run_plain))
            rounds["runner"].append(step(f"[{n}/{args.repeat}] runner (defaults: fast precision, cache on, cold)",
                                         lambda n=n, d=runs_dir: bench.run_runner(f"runner-r{n}", runs_dir=d)))
            if "stock" not in skip:
                rounds["runner_stock_precision"].append(step(
                    f"[{n}/{args.repeat}] runner (FAST_PRECISION=false, RESULT_CACHE=false)",
                    lambda n=n: bench.run_runner(f"runner-stock-r{n}", FAST_PRECISION="false", RESULT_CACHE="false")))
        if any(r["cache_hit"] for r in rounds["runner"] + rounds["runner_stock_precision"]):
            print("WARNING: a measured runner run was served from the result cache", flush=True)
        best = {k: (min(v, key=lambda r: r["wall_s"]) if v else None) for k, v in rounds.items()}
        plain, runner, stock = best["plain"], best["runner"], best["runner_stock_precision"]
        report["compare"] = {**best, "rounds": rounds}
        same = lambda r: (r is not None and r.get("trades") == plain.get("trades")  # noqa: E731
                          and r.get("profit_total_abs") is not None and plain.get("profit_total_abs") is not None
                          and abs(r["profit_total_abs"] - plain["profit_total_abs"]) <= 1e-9 * max(1, abs(plain["profit_total_abs"])))
        report["compare"]["ratios"] = {
            "runner_wall": _ratio(runner["wall_s"], plain["wall_s"]),
            "runner_rss": _ratio(runner["peak_rss_mb"], plain["peak_rss_mb"]),
            "runner_wall_without_mlflow": _ratio(
                runner["wall_s"] - ((runner.get("phases_s") or {}).get("mlflow_start") or 0)
                - ((runner.get("phases_s") or {}).get("mlflow_finish") or 0), plain["wall_s"]),
            "runner_stock_wall": _ratio(stock and stock["wall_s"], plain["wall_s"]),
            "runner_stock_rss": _ratio(stock and stock["peak_rss_mb"], plain["peak_rss_mb"]),
            "same_trades_and_profit": all(same(r) for k in ("runner", "runner_stock_precision") for r in rounds[k])
            and len({r.get("trades") for r in rounds["plain"]}) == 1,
        }
        from strategy_runner.settings import Settings

        if "result_cache" not in Settings.model_fields:
            report["cache"] = None  # printed as "n/a (no cache yet)"
        elif "cache" not in skip:
            first = rounds["runner"][0]
            cached = step("cached rerun (same inputs, new RUN_ID)", lambda: bench.run_runner(
                "runner-rerun", runs_dir=str(bench.out / f"runs-{bench.stamp}-r1")))
            report["cache"] = {"cold_wall_s": first["wall_s"], "cached_wall_s": cached["wall_s"],
                               "cache_hit": cached["cache_hit"], "speedup": _ratio(first["wall_s"], cached["wall_s"]),
                               "same_trades": cached.get("trades") == first.get("trades")}
    report["machine"]["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    report["finished_at"] = datetime.now(UTC).isoformat()
    path = bench.out / f"bench-{bench.stamp}.json"
    path.write_text(json.dumps(report, indent=2))
    (bench.out / "latest.json").write_text(json.dumps(report, indent=2))
    print(table(report))
    print(f"\nJSON: {path}")
    return 0


def _years(timerange: str) -> float:
    start, end = (datetime.strptime(x, "%Y%m%d") for x in timerange.split("-"))
    return (end - start).days / 365.25


def table(r: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str, str]] = []
    t = r["targets"]
    c = r.get("compare")
    if c:
        plain, runner, stock, ratios = c["plain"], c["runner"], c["runner_stock_precision"], c["ratios"]
        rows.append(("plain freqtrade: wall / peak RSS", f"{plain['wall_s']:.1f} s / {plain['peak_rss_mb']:.0f} MB",
                     "", f"trades {plain['trades']}"))
        rows.append(("runner: wall / peak RSS", f"{runner['wall_s']:.1f} s / {runner['peak_rss_mb']:.0f} MB", "",
                     f"trades {runner['trades']}"))
        ph = runner.get("phases_s") or {}
        rows.append(("  runner phases: start/pre-worker/worker/post",
                     " / ".join("-" if ph.get(k) is None else f"{ph[k]:.1f}" for k in
                                ("start_to_running", "running_to_worker", "worker", "worker_done_to_completed")) + " s",
                     "", "pre-worker = MLflow start, cache key"))
        if ph.get("mlflow_start") is not None:
            rows.append(("  of which MLflow start / finish", f"{ph['mlflow_start']:.1f} / {ph.get('mlflow_finish') or 0:.1f} s",
                         "", f"ratio without them {ratios.get('runner_wall_without_mlflow')}"))
        rows.append(("runner / plain wall", str(ratios["runner_wall"]), f"<= {t['wall_ratio']}",
                     _mark(ratios["runner_wall"] is not None and ratios["runner_wall"] <= t["wall_ratio"])))
        rows.append(("runner / plain peak RSS", str(ratios["runner_rss"]), f"<= {t['rss_ratio']}",
                     _mark(ratios["runner_rss"] is not None and ratios["runner_rss"] <= t["rss_ratio"])))
        if stock:
            rows.append(("runner, stock precision: wall / RSS", f"{stock['wall_s']:.1f} s / {stock['peak_rss_mb']:.0f} MB",
                         "", f"trades {stock['trades']}"))
            rows.append(("  ratio wall / RSS vs plain", f"{ratios['runner_stock_wall']} / {ratios['runner_stock_rss']}",
                         f"<= {t['stock_wall_ratio']} / {t['rss_ratio']}",
                         _mark(ratios["runner_stock_wall"] is not None
                               and ratios["runner_stock_wall"] <= t["stock_wall_ratio"]
                               and ratios["runner_stock_rss"] <= t["rss_ratio"])))
        rows.append(("same trade count and profit", str(ratios["same_trades_and_profit"]), "True",
                     _mark(ratios["same_trades_and_profit"])))
    fx = r.get("overhead")
    if fx:
        rows.append((f"fixed: plain / runner tracked ({fx['pair']} x {fx['timerange']})",
                     f"{fx['plain_wall_s']:.2f} s / {fx['runner_wall_s']:.2f} s", "", f"median of {fx['rounds']}"))
        rows.append(("  runner overhead (tracked, moto + mlflow server)", f"{fx['overhead_s']:+.2f} s",
                     f"<= {t['fixed_overhead_s']} s", _mark(fx["overhead_s"] <= t["fixed_overhead_s"])))
        rows.append(("  CPU time: plain / runner (overhead)",
                     f"{fx['plain_cpu_s']:.2f} s / {fx['runner_cpu_s']:.2f} s ({fx['overhead_cpu_s']:+.2f} s)", "",
                     "user + system of the process tree"))
        post, upload = fx.get("worker_end_to_completed_s"), fx.get("upload_s") or 0.0
        rows.append(("  worker end -> COMPLETED (of which upload)", f"{post} s ({upload} s)",
                     f"<= {t['worker_end_to_completed_s']} s + upload",
                     _mark(post is not None and post <= t["worker_end_to_completed_s"] + upload)))
        rows.append(("  MLflow start / finish (beside the worker / after it)",
                     f"{fx['mlflow_start_s']} s / {fx['mlflow_finish_s']} s", "", ""))
    pr = r.get("precision")
    if pr:
        rows.append(("precision inference: stock / fast", f"{pr['stock_s']:.2f} s / {pr['fast_s']:.2f} s",
                     "", f"x{pr['speedup']} ({pr['rows']} rows)"))
    lc = r.get("lifecycle")
    if lc:
        s = lc.get("start_to_started_at_s")
        rows.append(("start -> RUNNING (started_at)", f"{s} s", f"<= {t['start_to_running_s']} s",
                     _mark(s is not None and s <= t["start_to_running_s"])))
        rows.append(("start -> RUNNING (seen by poller)", f"{lc.get('start_to_running_polled_s')} s", "", ""))
        g = lc.get("max_heartbeat_gap_s")
        rows.append(("largest heartbeat gap (interval 1 s)", f"{g} s ({lc['heartbeats']} beats)",
                     f"<= {1 + t['heartbeat_slack_s']} s", _mark(g is not None and g <= 1 + t["heartbeat_slack_s"])))
    for sg in r.get("sigterm", []):
        v = sg.get("sigterm_to_terminal_s")
        rows.append((f"SIGTERM -> terminal ({sg.get('worker_phase_when_signalled') or sg['phase']}"
                     f"{', loaded' if sg.get('loaded') else ''})",
                     f"{v} s -> {sg.get('status')} {sg.get('error_type') or ''}".strip(),
                     f"<= {t['sigterm_to_terminal_s']} s", _mark(v is not None and v <= t["sigterm_to_terminal_s"])))
    ca = r.get("cache")
    if ca:
        rows.append(("cold / cached rerun", f"{ca['cold_wall_s']:.1f} s / {ca['cached_wall_s']:.1f} s",
                     "", f"x{ca['speedup']} hit={ca['cache_hit']}"))
    elif c:
        rows.append(("cold / cached rerun", "n/a (no cache yet)" if "cache" in r else "n/a", "",
                     "" if "cache" in r else "skipped"))
    head = (f"{len(r['pairs'])} pairs x {r['timerange']} ({r['pair_years']} pair-years), {r['strategy']}, "
            f"MLflow: {r.get('tracking', 'sqlite')}; "
            f"load avg {r['machine']['load_avg_before']} -> {r['machine'].get('load_avg_after')} "
            f"on {r['machine']['cpus']} CPUs")
    widths = [max(len(row[i]) for row in rows) for i in range(4)] if rows else [0] * 4
    lines = [head, ""]
    for row in [("measure", "value", "target", ""), *rows]:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
