"""End to end as ECS would launch it: the seed's RunBacktest environment, a real task token,
``strategy-runner backtest`` as its own process, DynamoDB/S3/Step Functions in the emulator.

The execution is started with the seed's test input; the state hands its token over
through SQS (see workflow.py); the test starts the runner with exactly the environment the
state built (plus the results bucket, the S3 data location and the endpoint) and checks
what the orchestrator, the table and the bucket end up with.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer

from strategy_runner.artifacts.base import sha256_file
from strategy_runner.runner import callback_output
from strategy_runner.status.base import now_iso
from strategy_runner.status.dynamodb import DynamoDBStatusStore, create_table, to_dynamo

from ..conftest import ROOT, runner
from ..faults.stack import write_strategies
from .workflow import TEST_INPUT, Workflow

DATA = ROOT / "data"
BTC_FUTURES_1H = ["futures/BTC_USDT_USDT-1h-futures.feather", "futures/BTC_USDT_USDT-1h-mark.feather",
                  "futures/BTC_USDT_USDT-1h-funding_rate.feather"]
OTHER_OWNER = "arn:aws:ecs:us-east-1:123456789012:task/tradai-cluster/0123456789abcdef"
HEARTBEAT_SECONDS = 3  # shorter than the run: only heartbeats keep the task alive


class Stack:
    """Table, results bucket, data bucket and workflow for one test."""

    def __init__(self, aws: Any, name: str, tmp_path: Path, cwd: Path, heartbeat_seconds: int = HEARTBEAT_SECONDS):
        self.aws, self.name, self.tmp_path, self.cwd = aws, name, tmp_path, cwd
        self.ddb = aws.client("dynamodb")
        self.s3 = aws.client("s3")
        create_table(self.ddb, name)
        self.store = DynamoDBStatusStore(self.ddb, name)
        self.results_bucket = f"{name}-results"
        self.data_bucket = f"{name}-data"
        for bucket in (self.results_bucket, self.data_bucket):
            self.s3.create_bucket(Bucket=bucket)
        self.upload_data("ohlcv/binance", BTC_FUTURES_1H)
        self.workflow = Workflow(aws, name, name, heartbeat_seconds=heartbeat_seconds)

    def upload_data(self, prefix: str, relpaths: list[str]) -> None:
        for rel in relpaths:
            self.s3.upload_file(str(DATA / rel), self.data_bucket, f"{prefix}/{rel}",
                                ExtraArgs={"Metadata": {"sha256": sha256_file(DATA / rel)}})

    def put_item(self, item: dict[str, Any]) -> None:
        """As the backend would write it."""
        ser = TypeSerializer()
        self.ddb.put_item(TableName=self.name, Item={
            k: ser.serialize(to_dynamo(v)) for k, v in {"job_id": item["run_id"], **item}.items()})

    def run(self, env: dict[str, str], timeout: float):
        """The container command. Its cwd holds the default mlflow.db (MLFLOW_TRACKING_URI is
        empty), shared by these tests so the store is created once."""
        return runner(env, "backtest", cwd=self.cwd, timeout=timeout)

    def env(self, run_env: dict[str, str], execution, **extra: str) -> dict[str, str]:
        env = {**run_env, **self.aws.env, **execution.environment}
        env.update(RESULTS_BUCKET=self.results_bucket, DATA_S3_PATH=f"s3://{self.data_bucket}/ohlcv/binance",
                   DATA_DIR=str(self.tmp_path / "fargate-data"), HEARTBEAT_INTERVAL_SECONDS="1")
        env.update(extra)
        return env


class StatusWatcher:
    """Records every status the item passes through while the runner works."""

    def __init__(self, aws: Any, table: str, run_id: str):
        self.client = aws.client("dynamodb")
        self.table, self.run_id = table, run_id
        self.seen: list[str | None] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            item = self.client.get_item(TableName=self.table, Key={"job_id": {"S": self.run_id}},
                                        ConsistentRead=True).get("Item")
            status = item["status"]["S"] if item and "status" in item else None
            if not self.seen or self.seen[-1] != status:
                self.seen.append(status)
            if self._stop.wait(0.05):
                return

    def __enter__(self) -> StatusWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.2)
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="module")
def container_cwd(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("container-cwd")


@pytest.fixture
def stack(aws, aws_name, tmp_path, container_cwd) -> Stack:
    return Stack(aws, aws_name, tmp_path, container_cwd)


def _input(**changes: Any) -> dict[str, Any]:
    return {**TEST_INPUT, **changes}


def test_the_seed_test_input_runs_end_to_end(stack, aws, run_env, tmp_path):
    created = "2026-01-01T00:00:00.000000Z"
    stack.put_item({"run_id": "test-001", "status": "PENDING", "created_at": created, "strategy": "EmaCrossFutures"})
    execution = stack.workflow.start()
    env = stack.env(run_env, execution)
    assert {k: env[k] for k in ("RUN_ID", "STRATEGY", "TIMEFRAME", "TIMERANGE", "PAIRS", "EXPERIMENT_NAME")} == {
        "RUN_ID": "test-001", "STRATEGY": "EmaCrossFutures", "TIMEFRAME": "1h", "TIMERANGE": "2024-01-01-2024-06-01",
        "PAIRS": '["BTC/USDT:USDT"]', "EXPERIMENT_NAME": "test-experiment"}

    with StatusWatcher(aws, stack.name, "test-001") as watcher:
        proc = stack.run(env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    # Step Functions: SUCCEEDED with the runner's output, kept alive past HeartbeatSeconds.
    described = stack.workflow.wait(execution)
    assert described["status"] == "SUCCEEDED", stack.workflow.failure(execution)
    item = stack.store.get("test-001")
    output = json.loads(described["output"])
    assert output == callback_output(item)
    assert output["status"] == "COMPLETED" and output["results_uri"] == f"s3://{stack.results_bucket}/backtests/test-001/"
    assert set(output["metrics"]) >= {"profit_total", "sharpe", "total_trades"}
    assert len(described["output"]) < 2048
    task_seconds = stack.workflow.task_seconds(execution)
    assert task_seconds > HEARTBEAT_SECONDS, f"the run took {task_seconds}s: too short to prove heartbeats"

    # DynamoDB: PENDING -> RUNNING -> COMPLETED with what an operator reads.
    assert watcher.seen == ["PENDING", "RUNNING", "COMPLETED"]
    assert item["created_at"] == created and item["attempt"] == 1
    assert item["trace_id"] and item["owner"] and item["results_uri"] == output["results_uri"]
    assert item["started_at"] < item["heartbeat_at"] < item["completed_at"]  # heartbeats happened
    assert item["strategy"] == "EmaCrossFutures" and item["pairs"] == ["BTC/USDT:USDT"]
    assert item["timerange"] == "20240101-20240601" and item["timeframe"] == "1h"
    assert item["experiment_name"] == "test-experiment"
    local = json.loads((tmp_path / "runs" / "test-001" / "backtest-result.json").read_text())
    assert item["summary"]["total_trades"] == local["metrics"]["total_trades"] > 0
    assert item["summary"]["profit_total"] == pytest.approx(local["metrics"]["profit_total"])
    assert "error_type" not in item
    assert [i["run_id"] for i in stack.store.query(trace_id=item["trace_id"])] == ["test-001"]
    assert "test-001" in [i["run_id"] for i in stack.store.query(status="COMPLETED", since=created)]

    # S3: every result under backtests/test-001/, each matching the manifest's SHA-256.
    prefix = "backtests/test-001/"
    keys = {o["Key"] for o in stack.s3.list_objects_v2(Bucket=stack.results_bucket, Prefix=prefix)["Contents"]}
    manifest = json.loads(stack.s3.get_object(Bucket=stack.results_bucket, Key=prefix + "manifest.json")["Body"].read())
    assert keys == {prefix + name for name in manifest["files"]} | {prefix + "manifest.json"}
    assert {"backtest-result.json", "trades.csv", "run.log"} <= set(manifest["files"])
    assert any(name.endswith(".zip") for name in manifest["files"])
    for name, entry in manifest["files"].items():
        body = stack.s3.get_object(Bucket=stack.results_bucket, Key=prefix + name)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == entry["sha256"], name

    # Data came from S3: only the files this run needs.
    fetched = sorted(str(p.relative_to(tmp_path / "fargate-data")) for p in (tmp_path / "fargate-data").rglob("*.feather"))
    assert fetched == sorted(BTC_FUTURES_1H)


@pytest.mark.parametrize("bad", [{"strategy_name": "MomentumStrategy"}, {"timeframe": "7m"}],
                         ids=["seed-strategy-missing", "bad-timeframe"])
def test_invalid_input_fails_the_execution_with_validation_error(stack, run_env, bad):
    stack.put_item({"run_id": "test-001", "status": "PENDING", "created_at": now_iso()})
    execution = stack.workflow.start(_input(**bad))
    proc = stack.run(stack.env(run_env, execution), timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert stack.workflow.wait(execution)["status"] == "FAILED"
    assert stack.workflow.failure(execution)["error"] == "ValidationError"
    item = stack.store.get("test-001")
    assert item["status"] == "FAILED" and item["error_type"] == "ValidationError"
    assert next(iter(bad.values())) in item["error_message"]


def test_missing_data_on_s3_is_data_stale(stack, run_env):
    stack.upload_data("eth-only", ["futures/ETH_USDT_USDT-1h-futures.feather"])
    execution = stack.workflow.start(_input(start_date="2024-05-01"))
    proc = stack.run(stack.env(run_env, execution, DATA_S3_PATH=f"s3://{stack.data_bucket}/eth-only"), timeout=120)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert stack.workflow.wait(execution)["status"] == "FAILED"
    assert stack.workflow.failure(execution)["error"] == "DataStaleError"
    item = stack.store.get("test-001")
    assert item["status"] == "FAILED" and item["error_type"] == "DataStaleError"
    for missing in ("BTC/USDT:USDT 1h futures", "BTC/USDT:USDT 1h mark", "BTC/USDT:USDT 1h funding_rate"):
        assert missing in item["error_message"]


def test_a_duplicate_concurrent_run_is_refused_without_touching_the_item(stack, run_env):
    stack.put_item({"run_id": "test-001", "status": "RUNNING", "owner": OTHER_OWNER, "attempt": 1,
                    "created_at": now_iso(), "started_at": now_iso(), "heartbeat_at": now_iso(), "trace_id": "t-live"})
    before = stack.store.get("test-001")
    execution = stack.workflow.start()
    proc = stack.run(stack.env(run_env, execution), timeout=120)
    assert proc.returncode == 7, proc.stderr[-2000:]
    assert stack.store.get("test-001") == before
    assert stack.workflow.wait(execution)["status"] == "FAILED"
    assert stack.workflow.failure(execution)["error"] == "RunConflict"
    assert stack.s3.list_objects_v2(Bucket=stack.results_bucket).get("KeyCount", 0) == 0


def test_a_completed_run_is_reported_not_recomputed(stack, run_env, tmp_path):
    stored = {"run_id": "test-001", "status": "COMPLETED", "created_at": now_iso(), "attempt": 1, "owner": OTHER_OWNER,
              "results_uri": "s3://earlier/backtests/test-001/", "mlflow_run_id": "abc123",
              "summary": {"profit_total": 0.0369, "sharpe": 1.63, "total_trades": 41}}
    stack.put_item(stored)
    before = stack.store.get("test-001")
    execution = stack.workflow.start()
    proc = stack.run(stack.env(run_env, execution), timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert stack.store.get("test-001") == before
    described = stack.workflow.wait(execution)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {
        "run_id": "test-001", "status": "COMPLETED", "results_uri": "s3://earlier/backtests/test-001/",
        "mlflow_run_id": "abc123", "metrics": {"profit_total": 0.0369, "sharpe": 1.63, "total_trades": 41}}
    assert not (tmp_path / "runs" / "test-001" / "backtest-result.json").exists()  # nothing recomputed


def test_a_results_bucket_that_does_not_exist_fails_with_the_upload_named(stack, run_env, tmp_path):
    execution = stack.workflow.start(_input(start_date="2024-05-01"))
    missing = f"{stack.name}-nope"
    proc = stack.run(stack.env(run_env, execution, RESULTS_BUCKET=missing), timeout=180)
    assert proc.returncode == 6, proc.stderr[-2000:]
    item = stack.store.get("test-001")
    # Permanent: a retry would rerun the whole backtest into the same missing bucket.
    assert item["status"] == "FAILED" and item["error_type"] == "ResultsAccessError" and item["retryable"] is False
    assert f"s3://{missing}/backtests/test-001/backtest-result.json" in item["error_message"]
    assert "results_uri" not in item
    run_dir = tmp_path / "runs" / "test-001"
    assert (run_dir / "backtest-result.json").exists() and list(run_dir.glob("backtest-result-*.zip"))
    assert stack.workflow.wait(execution)["status"] == "FAILED"
    assert stack.workflow.failure(execution)["error"] == "ResultsAccessError"


def _timing_out_stack(aws, aws_name, tmp_path, container_cwd) -> Stack:
    """A task that times out 1 s after its last heartbeat, with 5m futures candles."""
    stack = Stack(aws, aws_name, tmp_path, container_cwd, heartbeat_seconds=1)
    stack.upload_data("ohlcv/binance", ["futures/BTC_USDT_USDT-5m-futures.feather"])
    return stack


def test_when_the_orchestrator_gives_up_the_run_is_cancelled(aws, aws_name, run_env, tmp_path, container_cwd):
    """HeartbeatSeconds 1, heartbeats every 3 s: the task times out, the next heartbeat is
    answered TaskTimedOut/InvalidToken, the backtest stops and the item says CANCELLED. The
    strategy sleeps in its indicators, so the run is still working when that heartbeat comes
    (a real backtest of this data can end first on a fast machine: seen in this suite)."""
    stack = _timing_out_stack(aws, aws_name, tmp_path, container_cwd)
    execution = stack.workflow.start(_input(strategy_name="Sleepy", timeframe="5m", start_date="2024-01-01",
                                            end_date="2024-04-01"))
    started = time.monotonic()
    proc = stack.run(stack.env(run_env, execution, HEARTBEAT_INTERVAL_SECONDS="3",
                               STRATEGIES_DIR=str(write_strategies(tmp_path / "strategies"))), timeout=180)
    assert proc.returncode == 8, proc.stderr[-2000:]
    item = stack.store.get("test-001")
    assert item["status"] == "CANCELLED" and item["error_type"] == "Cancelled"
    assert "TaskTimedOut" in item["error_message"] or "InvalidToken" in item["error_message"]
    assert not (tmp_path / "runs" / "test-001" / "backtest-result.json").exists()  # stopped, not finished
    assert (tmp_path / "runs" / "test-001" / "run.log").exists()
    assert stack.workflow.wait(execution)["status"] == "FAILED"
    assert stack.workflow.failure(execution)["error"] == "States.Timeout"
    assert time.monotonic() - started < 60


def test_a_run_that_ends_after_the_orchestrator_gave_up_keeps_its_result(aws, aws_name, run_env, tmp_path,
                                                                        container_cwd):
    """HeartbeatSeconds 1 and no heartbeat after the claim's: the task times out while the
    backtest runs, which ends before it could hear so. The finished result is kept (COMPLETED,
    uploaded); the callback is refused and says so in the log."""
    stack = _timing_out_stack(aws, aws_name, tmp_path, container_cwd)
    execution = stack.workflow.start(_input(timeframe="5m", start_date="2024-01-01", end_date="2024-04-01"))
    proc = stack.run(stack.env(run_env, execution, HEARTBEAT_INTERVAL_SECONDS="60"), timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    item = stack.store.get("test-001")
    assert item["status"] == "COMPLETED" and item["summary"]["total_trades"] > 0 and not item.get("error_type")
    keys = {o["Key"] for o in stack.s3.list_objects_v2(Bucket=stack.results_bucket)["Contents"]}
    assert "backtests/test-001/backtest-result.json" in keys
    assert stack.workflow.wait(execution)["status"] == "FAILED"
    assert stack.workflow.failure(execution)["error"] == "States.Timeout"
    refused = [json.loads(line) for line in proc.stderr.splitlines() if "InvalidToken" in line]
    assert [(r["event"], r["call"]) for r in refused] == [("side effect failed", "CallbackOnce.succeed")], refused


def test_an_invalid_config_overlay_on_s3_is_a_configuration_error(stack, run_env):
    stack.s3.put_object(Bucket=stack.data_bucket, Key="configs/test-001.json", Body=b'{"max_open_trades": ')
    execution = stack.workflow.start(_input(start_date="2024-05-01"))
    uri = f"s3://{stack.data_bucket}/configs/test-001.json"
    proc = stack.run(stack.env(run_env, execution, CONFIG_S3_PATH=uri), timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    item = stack.store.get("test-001")
    assert item["status"] == "FAILED" and item["error_type"] == "ConfigurationError"
    assert uri in item["error_message"] and "not valid JSON" in item["error_message"]
    assert stack.workflow.wait(execution)["status"] == "FAILED"
    assert stack.workflow.failure(execution)["error"] == "ConfigurationError"
