"""The worker started before the claim (supervisor/warm.py): it runs with the environment as
it is after the claim, and a run that needs no worker leaves none behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil

from tests.conftest import runner

SHORT = {"PAIRS": "BTC/USDT", "TIMERANGE": "20240901-20240915", "TRACKING": "false", "RESULT_CACHE": "false"}


def _warm_workers(run_id: str) -> list[int]:
    """Warm workers of ``run_id`` (other runs on this machine start their own)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info.get("cmdline") or []
        try:
            if "strategy_runner.worker" in cmd and "--warm" in cmd and proc.environ().get("RUN_ID") == run_id:
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found


def test_the_worker_runs_with_the_trace_id_the_claim_adopted(run_env, tmp_path):
    env = {**run_env, **SHORT, "RUN_ID": "warm-trace", "TRACE_ID": "trace-of-this-process"}
    status = Path(env["RUNS_DIR"]) / ".status"
    status.mkdir(parents=True)
    # The backend created the item first, with its own trace id.
    (status / "warm-trace.json").write_text(json.dumps({"run_id": "warm-trace", "status": "PENDING",
                                                         "trace_id": "trace-from-the-backend"}))
    proc = runner(env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in (Path(env["RUNS_DIR"]) / "warm-trace" / "run.log").read_text().splitlines()
             if line.startswith("{")]
    started = next(line for line in lines if line["event"] == "worker started")
    assert started["warm"] is True
    worker = [line for line in lines if line.get("process") == "worker"]
    assert worker and {line["trace_id"] for line in worker} == {"trace-from-the-backend"}


def test_a_run_that_needs_no_worker_leaves_none_behind(run_env, tmp_path):
    env = {**run_env, **SHORT, "RUN_ID": "warm-twice"}
    first = runner(env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    # Already COMPLETED with the same inputs: nothing to run. Output to files, not pipes: a
    # reader of pipes would wait for every process holding them, a stray worker included.
    with open(tmp_path / "again.out", "w") as out:
        again = subprocess.run([sys.executable, "-m", "strategy_runner", "backtest"], env=env, cwd=tmp_path,
                               stdout=out, stderr=subprocess.STDOUT, timeout=300)
    assert again.returncode == 0, (tmp_path / "again.out").read_text()[-3000:]
    assert "run already completed" in (Path(env["RUNS_DIR"]) / "warm-twice" / "run.log").read_text()
    # Checked at once: left alone, a warm worker would only notice its closed stdin after its imports.
    assert _warm_workers("warm-twice") == []
