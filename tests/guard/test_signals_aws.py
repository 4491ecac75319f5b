"""SIGTERM in the middle of a real backtest against the real stores: DynamoDB and S3 through
the AWS emulator (tests/fixtures/aws.py), a waitForTaskToken Step Functions execution that
receives SendTaskFailure, and a real MLflow server. Measures and prints the latency."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from strategy_runner.status.dynamodb import DynamoDBStatusStore, create_table

from ..aws.workflow import Workflow
from .faults import mlflow_run, mlflow_status, start, stop_quietly

BUDGET_S = 30.0


def test_sigterm_mid_backtest_on_aws_ends_everything_within_the_budget(aws, aws_name, mlflow_server, run_env,
                                                                       tmp_path: Path):
    dynamodb = aws.client("dynamodb")
    create_table(dynamodb, aws_name)
    aws.client("s3").create_bucket(Bucket=aws_name)
    flow = Workflow(aws, aws_name, aws_name)
    execution = flow.start({"run_id": f"{aws_name}-run", "strategy_name": "EmaCrossSpot", "strategy_version": "1",
                            "experiment_name": "guard-signals", "symbols": ["BTC/USDT"], "timeframe": "5m",
                            "start_date": "2024-01-01", "end_date": "2024-05-01"})
    env = {**run_env, **aws.env, **execution.environment, "RESULTS_BUCKET": aws_name,
           "MLFLOW_TRACKING_URI": mlflow_server.uri, "HEARTBEAT_INTERVAL_SECONDS": "1"}
    run = start(env, tmp_path, execution.environment["RUN_ID"])
    try:
        at = run.wait_for_phase("backtest")
        sent = time.monotonic()
        run.signal(signal.SIGTERM)
        code = run.wait(timeout=BUDGET_S + 30)
        latency = time.monotonic() - sent
    finally:
        stop_quietly(run)
    print(f"\nSIGTERM -> exit on AWS (DynamoDB, S3, Step Functions, MLflow server) during {at}: "
          f"{latency:.2f} s (budget {BUDGET_S:.0f} s), exit code {code}")
    assert code == 75, run.stderr()[-3000:]
    item = DynamoDBStatusStore(dynamodb, aws_name).get(run.run_id)
    assert item["status"] == "FAILED" and item["error_type"] == "SpotInterrupted" and item["retryable"] is True
    assert item["peak_memory_mb"] > 100
    described = flow.wait(execution, timeout=30)
    assert described["status"] == "FAILED" and flow.failure(execution)["error"] == "SpotInterrupted"
    assert mlflow_status(mlflow_server.uri, item["mlflow_run_id"]) == "KILLED"
    metrics = {m["key"]: m["value"] for m in mlflow_run(mlflow_server.uri, item["mlflow_run_id"])["data"]["metrics"]}
    assert metrics["peak_memory_mb"] == pytest.approx(item["peak_memory_mb"])
    keys = {o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=aws_name)["Contents"]}
    assert f"backtests/{run.run_id}/run.log" in keys and f"backtests/{run.run_id}/manifest.json" in keys
    assert latency < BUDGET_S
