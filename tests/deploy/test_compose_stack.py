"""The compose stack without Docker: its twin on loopback.

`docker compose run strategy backtest` runs the image with the `strategy` service's
environment after `aws-init` created the table and bucket. Here the same environment, read
from docker-compose.yml, drives the same commands as processes; only the two service
addresses change (the emulator and MLflow server on loopback instead of aws:5000 and
mlflow:5000). The Docker-engine test in test_docker_engine.py runs the real thing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import uuid

import yaml

from ..conftest import runner
from . import checks


def compose_environment(service: str) -> dict[str, str]:
    doc = yaml.safe_load(checks.COMPOSE.read_text())
    return checks._environment(doc["services"][service])


def on_loopback(env: dict[str, str], aws, mlflow_uri: str | None = None) -> dict[str, str]:
    env = dict(env, AWS_ENDPOINT_URL=aws.url)
    if mlflow_uri:
        env["MLFLOW_TRACKING_URI"] = mlflow_uri
    return env


def devstack(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "strategy_runner.devstack"], env=env,
                          capture_output=True, text=True, timeout=120)


def test_stack_init_creates_the_table_with_its_indexes_and_the_bucket_idempotently(aws, run_env):
    env = {**run_env, **on_loopback(compose_environment("aws-init"), aws)}
    first, again = devstack(env), devstack(env)
    assert first.returncode == 0, first.stderr
    assert again.returncode == 0, again.stderr
    table = aws.client("dynamodb").describe_table(TableName=env["DYNAMODB_TABLE"])["Table"]
    assert table["KeySchema"] == [{"AttributeName": "job_id", "KeyType": "HASH"}]
    indexes = {i["IndexName"]: [k["AttributeName"] for k in i["KeySchema"]] for i in table["GlobalSecondaryIndexes"]}
    assert indexes == {"status-created_at-index": ["status", "created_at"], "trace_id-index": ["trace_id"]}
    aws.client("s3").head_bucket(Bucket=env["RESULTS_BUCKET"])


def test_stack_init_names_a_missing_variable(aws, run_env):
    env = {**run_env, **on_loopback(compose_environment("aws-init"), aws)}
    del env["RESULTS_BUCKET"]
    result = devstack(env)
    assert result.returncode == 2
    assert "RESULTS_BUCKET must be set" in result.stderr


def test_compose_defaults_run_a_backtest_the_user_can_then_inspect(aws, mlflow_server, run_env):
    env = {**run_env, **on_loopback(compose_environment("strategy"), aws, mlflow_server.uri)}
    assert devstack(env).returncode == 0
    run_id = f"compose-{uuid.uuid4().hex[:8]}"
    env.update(RUN_ID=run_id, PAIRS="BTC/USDT", TIMERANGE="20241101-20241115")

    result = runner(env, "backtest")
    assert result.returncode == 0, result.stderr[-3000:]

    # What the README tells the user to look at: the status item, the S3 results, the MLflow run.
    item = aws.client("dynamodb").get_item(TableName=env["DYNAMODB_TABLE"], Key={"job_id": {"S": run_id}})["Item"]
    assert item["status"]["S"] == "COMPLETED"
    keys = [o["Key"] for o in aws.client("s3").list_objects_v2(
        Bucket=env["RESULTS_BUCKET"], Prefix=f"backtests/{run_id}/")["Contents"]]
    assert f"backtests/{run_id}/backtest-result.json" in keys
    mlflow_run_id = item["mlflow_run_id"]["S"]
    with urllib.request.urlopen(f"{mlflow_server.uri}/api/2.0/mlflow/runs/get?run_id={mlflow_run_id}", timeout=10) as r:
        mlflow_run = json.load(r)["run"]
    assert mlflow_run["info"]["status"] == "FINISHED"

    shown = runner(env, "status", run_id, "--json")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert run_id in shown.stdout and "backtest-result.json" in shown.stdout and mlflow_run_id in shown.stdout
