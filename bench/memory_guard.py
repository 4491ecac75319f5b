"""The largest backtest that completes under a 2 GiB limit with the guard, next to plain Freqtrade.

    python bench/memory_guard.py                       # runner at --sizes, plain at --plain-sizes
    python bench/memory_guard.py --sizes 1,2,4 --no-plain   # calibration points only

For each N (pairs x one year of 5m): candles for N spot pairs x 2024 (plus December 2023 as
warm-up) are generated with strategy_runner.sample_data (pairs beyond the 12 in
configs/markets/binance.json get synthetic markets cloned from BTC/USDT, in a temporary
CONFIGS_DIR), then

- runner (N in --sizes): ``strategy-runner backtest`` with MEMORY_LIMIT_MB (default 2048),
  EmaCrossSpot, tracked in an embedded MLflow store created beforehand (a first run in a
  directory creates it through the mlflow library, ~230 MiB more at its start, which the
  estimate adds); the run completes, is refused by the pre-flight estimate, or is stopped by
  the runtime guard. Peak = the status item's peak_memory_mb (supervisor + worker, sampled
  4x a second) and this script's own sample of the process tree every 0.1 s;
- plain (N in --plain-sizes): stock Freqtrade (``freqtrade backtesting`` through
  bench/plain_freqtrade.py, which only serves the same markets offline) on the same data and
  config. No cgroup can be made here (no privileges, no Docker), so the 2 GiB verdict for
  plain Freqtrade is its measured peak RSS against 2048 MiB: above it, a 2 GiB task is
  OOM-killed (exit 137, no message).

Where both ran, the peak ratio (runner / plain, both sampled here) and the wall ratio are
printed; then the largest N each completed under the limit, and a least-squares line through
the completed runner runs (peak vs pair-years): the calibration of
strategy_runner.guard.estimate. Writes bench/out/memory_guard-<UTC>.json and
bench/out/memory_guard.json. The machine is shared: the load average is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from strategy_runner.engine.config import effective_config, read_json  # noqa: E402
from strategy_runner.guard import estimate as est  # noqa: E402
from strategy_runner.sample_data import SamplePair, generate  # noqa: E402
from strategy_runner.settings import child_environment  # noqa: E402

STRATEGY = "EmaCrossSpot"
TIMERANGE = "20240101-20250101"  # one year (366 days)
DATA_START, DATA_END = "2023-12-01", "2025-01-01"
DROP = ("DYNAMODB_TABLE", "RESULTS_BUCKET", "TASK_TOKEN", "MLFLOW_TRACKING_URI", "AWS_ENDPOINT_URL", "RUN_ID",
        "TRADAI_RUN_ID", "TRACE_ID", "PAIRS", "TIMERANGE", "CONFIG", "CONFIG_S3_PATH", "DATA_S3_PATH",
        "MEMORY_LIMIT_MB", "MEMORY_SOFT_LIMIT_PCT", "RESULT_CACHE")
START_PRICES = {"ADA": 0.38, "AVAX": 21.0, "BNB": 228.0, "BTC": 38_700.0, "DOGE": 0.085, "DOT": 5.3,
                "ETH": 2_090.0, "LINK": 14.9, "LTC": 68.0, "SOL": 59.0, "TRX": 0.104, "XRP": 0.61}


def markets_for(n: int, configs: Path) -> list[SamplePair]:
    """N spot pairs: the snapshot's, then synthetic ones (S01/USDT, ...) cloned from BTC/USDT."""
    snapshot_path = configs / "markets" / "binance.json"
    snapshot = json.loads(snapshot_path.read_text())
    markets = snapshot["markets"]
    spot = sorted(k for k, m in markets.items() if m["type"] == "spot")
    for i in range(max(0, n - len(spot))):
        base = f"S{i + 1:02d}"
        clone = json.loads(json.dumps(markets["BTC/USDT"]))
        clone.update(symbol=f"{base}/USDT", base=base, baseId=base, id=f"{base}USDT", lowercaseId=f"{base.lower()}usdt")
        clone["info"] = {"status": "TRADING", "symbol": f"{base}USDT"}
        markets[clone["symbol"]] = clone
        spot.append(clone["symbol"])
    snapshot_path.write_text(json.dumps(snapshot))
    pairs = []
    for symbol in spot[:n]:
        m = markets[symbol]
        base = symbol.split("/")[0]
        pairs.append(SamplePair(symbol, START_PRICES.get(base, 38_700.0 if base.startswith("S") else 1.0),
                                m["precision"]["price"], m["precision"]["amount"]))
    return pairs


class TreePeak:
    """Peak RSS of a process tree, sampled every 0.1 s."""

    def __init__(self, pid: int):
        self.root = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                return
            total = 0
            for p in procs:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    continue
            self.peak = max(self.peak, total)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(2)
        return round(self.peak / 2**20, 1)


def timed(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> dict[str, Any]:
    started = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        sampler = TreePeak(proc.pid)
        proc.wait()
    return {"exit_code": proc.returncode, "wall_s": round(time.monotonic() - started, 1),
            "sampled_peak_mb": sampler.stop()}


def run_guarded(work: Path, pairs: list[str], limit_mb: int, label: str) -> dict[str, Any]:
    run_id = f"guard-{label}"
    env = child_environment({
        "RUN_ID": run_id, "PAIRS": ",".join(pairs), "TIMERANGE": TIMERANGE, "STRATEGY": STRATEGY,
        "DATA_DIR": str(work / "data"), "RUNS_DIR": str(work / "runs"), "STRATEGIES_DIR": str(ROOT / "strategies"),
        "CONFIGS_DIR": str(work / "configs"), "LOG_FORMAT": "json", "MEMORY_LIMIT_MB": str(limit_mb),
        "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}", "RESULT_CACHE": "false",
    }, drop=DROP)
    result = timed([sys.executable, "-m", "strategy_runner", "backtest"], env, work, work / f"{run_id}.out")
    item = json.loads((work / "runs" / ".status" / f"{run_id}.json").read_text())
    result.update(status=item.get("status"), error_type=item.get("error_type"),
                  peak_memory_mb=item.get("peak_memory_mb"), error_message=item.get("error_message"),
                  trades=(item.get("summary") or {}).get("total_trades"))
    return result


def run_plain(work: Path, pairs: list[str], label: str) -> dict[str, Any]:
    plain = work / f"plain-{label}"
    (plain / "user_data").mkdir(parents=True, exist_ok=True)
    (plain / "results").mkdir(exist_ok=True)
    config = effective_config(read_json(ROOT / "configs" / "base.json", "config"), None, strategy=STRATEGY,
                              timeframe="5m", timerange=TIMERANGE, pairs=tuple(pairs))
    (plain / "config.json").write_text(json.dumps(config, indent=2))
    cmd = [sys.executable, str(ROOT / "bench" / "plain_freqtrade.py"), str(work / "configs" / "markets" / "binance.json"),
           "backtesting", "--config", str(plain / "config.json"), "--strategy", STRATEGY,
           "--strategy-path", str(ROOT / "strategies"), "--datadir", str(work / "data"),
           "--userdir", str(plain / "user_data"), "--export", "trades", "--backtest-directory", str(plain / "results"),
           "--cache", "none", "--timerange", TIMERANGE]
    return timed(cmd, child_environment({}, drop=DROP), plain, plain / "freqtrade.out")


def fit(points: list[tuple[float, float]]) -> tuple[float, float] | None:
    """Least squares peak = a + b * pair_years."""
    if len({x for x, _ in points}) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    b = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)
    return my - b * mx, b


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2,10,20,44",
                        help="comma list of pair counts (one year of 5m each) the runner runs at")
    parser.add_argument("--plain-sizes", default="10,20,21,22",
                        help="the pair counts plain Freqtrade runs at (each costs a full backtest); 'all': the --sizes")
    parser.add_argument("--limit-mb", type=int, default=2048)
    parser.add_argument("--no-plain", action="store_true", help="skip plain Freqtrade")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--show", metavar="JSON", help="print the table of an earlier run's JSON and exit")
    args = parser.parse_args(argv)
    if args.show:
        print(table(json.loads(Path(args.show).read_text())))
        return 0
    sizes = sorted({int(s) for s in args.sizes.split(",")})
    plain_sizes = set() if args.no_plain else set(sizes) if args.plain_sizes == "all" else {
        int(s) for s in args.plain_sizes.split(",")}
    work = Path(tempfile.mkdtemp(prefix="memory-guard-"))
    shutil.copytree(ROOT / "configs", work / "configs")
    pairs = markets_for(max(set(sizes) | plain_sizes), work / "configs")
    started = time.monotonic()
    generate(work / "data", start=DATA_START, end=DATA_END, spot=tuple(pairs), futures=())
    # The embedded MLflow store, created once untimed (as by any first run in a directory): every
    # size then measures the steady state, where the runner writes the store directly.
    subprocess.run([sys.executable, "-c", "import sys; from mlflow.tracking import MlflowClient; "
                    "MlflowClient(tracking_uri=sys.argv[1]).search_experiments()", f"sqlite:///{work / 'mlflow.db'}"],
                   check=True, timeout=600, cwd=work, env=child_environment({}, drop=DROP), capture_output=True)
    print(f"generated {len(pairs)} pairs x {DATA_START}..{DATA_END} in {time.monotonic() - started:.0f} s", flush=True)
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(), "limit_mb": args.limit_mb, "strategy": STRATEGY,
        "timerange": TIMERANGE, "cpus": os.cpu_count(), "load_before": os.getloadavg(),
        "estimate_constants": {"base_mb": est.BASE_MB, "mb_per_100k_candles": est.MB_PER_100K_CANDLES,
                               "refuse_factor": est.REFUSE_FACTOR}, "rows": [],
    }
    for n in sorted(set(sizes) | plain_sizes):
        names = [p.pair for p in pairs[:n]]
        guess = est.estimate_peak(names, "5m", TIMERANGE, "spot", work / "data")
        row: dict[str, Any] = {"pairs": n, "pair_years": round(guess.pair_years, 2), "estimate_mb": round(guess.mb)}
        if n in sizes:
            print(f"N={n}: guarded ...", flush=True)
            row["guarded"] = run_guarded(work, names, args.limit_mb, f"{n}")
        if n in plain_sizes:
            print(f"N={n}: plain ...", flush=True)
            row["plain"] = run_plain(work, names, f"{n}")
            row["plain"]["fits_limit"] = row["plain"]["exit_code"] == 0 and row["plain"]["sampled_peak_mb"] < args.limit_mb
        if "guarded" in row and "plain" in row:
            row["peak_ratio"] = round(row["guarded"]["sampled_peak_mb"] / row["plain"]["sampled_peak_mb"], 3)
            row["wall_ratio"] = round(row["guarded"]["wall_s"] / row["plain"]["wall_s"], 3)
        row["load"] = os.getloadavg()
        report["rows"].append(row)
        print(json.dumps(row), flush=True)
    report["load_after"] = os.getloadavg()
    done = [r for r in report["rows"] if r.get("guarded", {}).get("status") == "COMPLETED"]
    report["largest_completed_pairs"] = max((r["pairs"] for r in done), default=None)
    report["plain_largest_fitting_pairs"] = max((r["pairs"] for r in report["rows"] if r.get("plain", {}).get("fits_limit")),
                                                default=None)
    line = fit([(r["pair_years"], r["guarded"]["peak_memory_mb"]) for r in done])
    report["calibration_fit"] = {"base_mb": round(line[0], 1), "mb_per_pair_year": round(line[1], 1)} if line else None
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for path in (out / f"memory_guard-{stamp}.json", out / "memory_guard.json"):
        path.write_text(json.dumps(report, indent=2))
    print(table(report))
    print(f"wrote {out / f'memory_guard-{stamp}.json'}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept {work}")
    return 0


def table(report: dict[str, Any]) -> str:
    limit = report["limit_mb"]
    lines = [f"memory guard at a {limit} MiB limit, {report['strategy']}, 5m, {report['timerange']} "
             f"(load {report['load_before'][0]:.1f} -> {report['load_after'][0]:.1f} on {report['cpus']} CPUs)",
             f"{'pairs':>5} {'pair-yr':>7} {'estimate':>8} | {'runner':<28} {'peak MiB':>8} {'wall s':>6} | "
             f"{'plain peak MiB':>14} {'wall s':>6} {'in a ' + str(limit) + ' MiB task':<24} | {'peak ratio':>10}"]
    for r in report["rows"]:
        g = r.get("guarded")
        if g:
            verdict = g["status"] if g["status"] == "COMPLETED" else f"{g['status']} {g['error_type']}"
            refused = g["peak_memory_mb"] is None  # by the pre-flight estimate: no worker ran
            peak = f"{'-':>8}" if refused else f"{g['sampled_peak_mb']:>8.0f}"
            runner_cols = f"{verdict:<28} {peak} {g['wall_s']:>6.0f}"
        else:
            runner_cols = f"{'-':<28} {'-':>8} {'-':>6}"
        plain = r.get("plain")
        if plain:
            ok = plain["exit_code"] == 0
            at_limit = ("fits" if plain["fits_limit"] else "over: OOM kill, exit 137") if ok else f"exit {plain['exit_code']}"
            plain_cols = f"{plain['sampled_peak_mb']:>14.0f} {plain['wall_s']:>6.0f} {at_limit:<24}"
        else:
            plain_cols = f"{'-':>14} {'-':>6} {'-':<24}"
        ratio = f"{r['peak_ratio']:>10.2f}" if "peak_ratio" in r else f"{'-':>10}"
        lines.append(f"{r['pairs']:>5} {r['pair_years']:>7.1f} {r['estimate_mb']:>8} | {runner_cols} | {plain_cols} | {ratio}")
    lines.append(f"largest completed by the runner under the guard: {report['largest_completed_pairs']} pairs x 1 year")
    lines.append(f"largest plain Freqtrade run under {limit} MiB: {report.get('plain_largest_fitting_pairs')} pairs x 1 year")
    if report["calibration_fit"]:
        f = report["calibration_fit"]
        lines.append(f"fit through completed runs: peak ~= {f['base_mb']} MiB + {f['mb_per_pair_year']} MiB per pair-year")
    return "\n".join(line.rstrip() for line in lines)


if __name__ == "__main__":
    sys.exit(main())
