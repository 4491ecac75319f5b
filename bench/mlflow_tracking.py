"""What MLflow tracking costs the supervisor: memory, time to RUNNING, time per MLflow step.

    python bench/mlflow_tracking.py

Prints a table and writes bench/out/mlflow-<UTC time>.json. Measured:
- RSS of a fresh interpreter after importing the supervisor (strategy_runner.runner and the
  adapters), and after also importing mlflow: why MLflow runs in a child process;
- a short real backtest (1 pair, 2 weeks of 5m) per tracking target: the embedded sqlite
  store (first run creates it, second reuses it), an unreachable server (closed port) and a
  hung one (accepts, never answers; MLFLOW_TIMEOUT_SECONDS=3). For each: wall time, time from
  process start to RUNNING in the status store, the MLflow start/finish step times (from
  run.log), peak RSS of the supervisor alone and of the MLflow child processes, sampled every
  50 ms with psutil.
Target: the supervisor stays under 100 MB RSS while the worker runs, RUNNING within 1 s.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"


def import_rss(code: str) -> dict[str, float]:
    probe = (
        "import time, psutil; t = time.monotonic()\n"
        f"{code}\n"
        "print(round(psutil.Process().memory_info().rss / 2**20, 1), round(time.monotonic() - t, 2))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tempfile.gettempdir(),
                         check=True).stdout.split()
    return {"rss_mib": float(out[-2]), "import_s": float(out[-1])}


def run_backtest(env: dict[str, str], cwd: Path) -> dict[str, Any]:
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "strategy_runner", "backtest"], env=env, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    supervisor = psutil.Process(proc.pid)
    status_file = Path(env["RUNS_DIR"]) / ".status" / f"{env['RUN_ID']}.json"
    running_at = None
    peak_supervisor = peak_tracking = 0.0
    while proc.poll() is None:
        try:
            peak_supervisor = max(peak_supervisor, supervisor.memory_info().rss / 2**20)
            for child in supervisor.children(recursive=True):
                if "strategy_runner.tracking.mlflow" in " ".join(child.cmdline()):
                    peak_tracking = max(peak_tracking, child.memory_info().rss / 2**20)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
        if running_at is None and status_file.exists():
            running_at = time.monotonic() - started
        time.sleep(0.05)
    wall = time.monotonic() - started
    steps = {}
    for line in (Path(env["RUNS_DIR"]) / env["RUN_ID"] / "run.log").read_text().splitlines():
        event = json.loads(line)
        if event.get("event") == "MLflow step done":
            steps[f"mlflow_{event['step']}_s"] = event["seconds"]
        if "tracking" in event.get("event", "") or event.get("event", "").startswith("MLflow"):
            steps.setdefault("messages", []).append(event.get("error") or event["event"])
    item = json.loads(status_file.read_text())
    return {
        "exit_code": proc.returncode, "status": item.get("status"), "tracking_error": item.get("tracking_error"),
        "wall_s": round(wall, 2), "to_running_s": round(running_at or -1, 2),
        "supervisor_peak_rss_mib": round(peak_supervisor, 1), "mlflow_child_peak_rss_mib": round(peak_tracking, 1),
        **{k: v for k, v in steps.items() if k != "messages"},
    }


def main() -> int:
    figures: dict[str, Any] = {"load_before": os.getloadavg()}
    figures["import"] = {
        "supervisor": import_rss("import strategy_runner.runner, strategy_runner.adapters"),
        "supervisor + mlflow": import_rss("import strategy_runner.runner, strategy_runner.adapters, mlflow"),
    }
    work = Path(tempfile.mkdtemp(prefix="bench-mlflow-"))
    base = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    base.update(DATA_DIR=str(ROOT / "data"), STRATEGIES_DIR=str(ROOT / "strategies"),
                CONFIGS_DIR=str(ROOT / "configs"), RUNS_DIR=str(work / "runs"), LOG_FORMAT="json",
                LOG_LEVEL="DEBUG", TIMERANGE="20240901-20240915", PAIRS="BTC/USDT")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)
    targets = {
        "sqlite (creates mlflow.db)": {},
        "sqlite (existing mlflow.db)": {},
        "unreachable server": {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{closed_port}"},
        "hung server, 3 s deadline": {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{hung.getsockname()[1]}",
                                      "MLFLOW_TIMEOUT_SECONDS": "3"},
    }
    figures["runs"] = {}
    for i, (name, extra) in enumerate(targets.items()):
        env = {**base, **extra, "RUN_ID": f"bench-mlflow-{i}"}
        figures["runs"][name] = run_backtest(env, work)
    hung.close()
    figures["load_after"] = os.getloadavg()

    print(f"{'import':<32} {'RSS MiB':>8} {'s':>6}")
    for name, row in figures["import"].items():
        print(f"{name:<32} {row['rss_mib']:>8} {row['import_s']:>6}")
    print()
    cols = ("status", "wall_s", "to_running_s", "supervisor_peak_rss_mib", "mlflow_child_peak_rss_mib",
            "mlflow_start_s", "mlflow_finish_s")
    print(f"{'tracking target':<30}" + "".join(f"{c:>27}" for c in cols))
    for name, row in figures["runs"].items():
        print(f"{name:<30}" + "".join(f"{str(row.get(c, '-')):>27}" for c in cols))
        if row["tracking_error"]:
            print(f"{'':<30}tracking_error: {row['tracking_error'][:150]}")
    print("\ntargets: supervisor < 100 MiB RSS while the worker runs; RUNNING < 1 s after start")
    print(f"load average before {figures['load_before']}, after {figures['load_after']}")
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = OUT / f"mlflow-{stamp}.json"
    path.write_text(json.dumps(figures, indent=2))
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
