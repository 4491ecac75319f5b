"""The operator commands under their small faults (contract point 9)."""

from __future__ import annotations

import subprocess
import sys

from strategy_runner.status.base import now_iso


def _put(case, run_id: str, **fields: str) -> None:
    item = {"job_id": {"S": run_id}, "run_id": {"S": run_id}, "status": {"S": "FAILED"},
            "created_at": {"S": now_iso()}, "trace_id": {"S": "trace-op"}, "strategy": {"S": "Plain"},
            "error_type": {"S": "BacktestError"}, "error_message": {"S": "x" * 300},
            **{k: {"S": v} for k, v in fields.items()}}
    case.aws.client("dynamodb").put_item(TableName=case.table, Item=item)


def test_status_prints_no_stray_library_lines(case):
    _put(case, case.run_id, mlflow_run_id="0123456789abcdef")  # the MLflow lookup imports pandas (numexpr)
    done = case.cli("status", case.run_id)
    assert done.returncode == 0, done.stderr
    assert "NumExpr" not in done.stderr and done.stderr.strip() == "", done.stderr
    assert "RESOURCE_DOES_NOT_EXIST" in done.stdout  # the MLflow lookup happened


def test_runs_json_into_head_ends_quietly(case):
    for n in range(250):  # far more than a pipe buffer holds
        _put(case, f"{case.run_id}-{n:03d}")
    env = case.environment()
    shell = f"{sys.executable} -m strategy_runner runs --status FAILED --json | head -c 100 > /dev/null"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", shell], env=env, cwd=case.tmp, capture_output=True,
                          text=True, timeout=120)
    assert "BrokenPipeError" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr
