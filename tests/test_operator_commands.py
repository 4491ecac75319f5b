"""``strategy-runner status`` and ``strategy-runner runs`` against the local store and DynamoDB (moto).

Items are written through each store's own claim/finish/touch, the way the runner writes them;
the commands run as real subprocesses reading the same store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from strategy_runner import errors
from strategy_runner.lifecycle import Status
from strategy_runner.operator.advice import PERMANENT, TRANSIENT, classify
from strategy_runner.operator.runs import parse_since
from strategy_runner.status.base import now_iso
from tests.conftest import runner

ECS_OWNER = "arn:aws:ecs:eu-west-1:123456789012:task/tradai-cluster/0f1e2d3c4b5a69788796a5b4c3d2e1f0"


@dataclass
class Store:
    kind: str
    store: Any
    env: dict[str, str]
    client: Any = None
    table: str | None = None

    def backdate(self, run_id: str, **times: str) -> None:
        """Move an item's timestamps into the past (the stores set them to 'now')."""
        if self.kind == "local":
            path = Path(self.env["RUNS_DIR"]) / ".status" / f"{run_id}.json"
            item = json.loads(path.read_text())
            item.update(times)
            path.write_text(json.dumps(item))
        else:
            names = {f"#{k}": k for k in times}
            values = {f":{k}": {"S": v} for k, v in times.items()}
            self.client.update_item(
                TableName=self.table, Key={"job_id": {"S": run_id}},
                UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in times),
                ExpressionAttributeNames=names, ExpressionAttributeValues=values,
            )


@pytest.fixture(params=["local", "dynamodb"])
def store(request, run_env, tmp_path) -> Store:
    env = {**run_env, "LEASE_SECONDS": "120", "HEARTBEAT_INTERVAL_SECONDS": "30",
           "LOG_GROUP": "/ecs/tradai-strategy-prod"}
    if request.param == "local":
        from strategy_runner.status.local import LocalStatusStore

        return Store("local", LocalStatusStore(Path(env["RUNS_DIR"])), env)
    aws = request.getfixturevalue("aws")
    name = request.getfixturevalue("aws_name")
    from strategy_runner.status.dynamodb import DynamoDBStatusStore, create_table

    client = aws.client("dynamodb")
    create_table(client, name)
    return Store("dynamodb", DynamoDBStatusStore(client, name), {**env, **aws.env, "DYNAMODB_TABLE": name},
                 client=client, table=name)


def _fields(trace_id: str, pairs: list[str]) -> dict[str, Any]:
    return {"trace_id": trace_id, "strategy": "EmaCrossSpot", "pairs": pairs, "timeframe": "5m",
            "timerange": "20240901-20241201"}


def _seed(s: Store) -> None:
    """old-failed (3 days ago), failed + done (trace T1, recent), a stale RUNNING one on ECS."""
    st = s.store
    st.claim("old-failed", owner="host:1", lease_seconds=600, fields=_fields("T0", ["BTC/USDT"]))
    st.finish("old-failed", Status.FAILED, owner="host:1", fields={
        "error_type": "DataStaleError", "error_message": "data does not cover the run", "retryable": False})
    three_days_ago = now_iso(datetime.now(UTC) - timedelta(days=3))
    s.backdate("old-failed", created_at=three_days_ago, started_at=three_days_ago)

    st.claim("oom-run", owner="host:2", lease_seconds=600, fields=_fields("T1", ["BTC/USDT", "ETH/USDT", "SOL/USDT"]))
    st.finish("oom-run", Status.FAILED, owner="host:2", fields={
        "error_type": "MemoryLimitExceeded", "error_message": "the worker was killed (SIGKILL)",
        "retryable": False, "peak_memory_mb": 1990.5, "traceback_tail": "Traceback\n  boom"})

    st.claim("done-run", owner="host:3", lease_seconds=600, fields=_fields("T1", ["ETH/USDT"]))
    st.finish("done-run", Status.COMPLETED, owner="host:3", fields={
        "summary": {"profit_total": 0.0123, "total_trades": 42}, "results_uri": "s3://nowhere-bucket/backtests/done-run/"})

    st.claim("stuck-run", owner=ECS_OWNER, lease_seconds=600, fields=_fields("T2", ["SOL/USDT"]))
    s.backdate("stuck-run", heartbeat_at=now_iso(datetime.now(UTC) - timedelta(minutes=10)))


def _json(proc) -> Any:
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def test_runs_by_status_since_and_trace(store, tmp_path):
    _seed(store)
    env = store.env
    recent_failed = _json(runner(env, "runs", "--status", "FAILED", "--since", "24h", "--json", cwd=tmp_path))
    assert [i["run_id"] for i in recent_failed] == ["oom-run"]
    all_failed = _json(runner(env, "runs", "--status", "FAILED", "--json", cwd=tmp_path))
    assert [i["run_id"] for i in all_failed] == ["oom-run", "old-failed"]  # newest first
    week = _json(runner(env, "runs", "--status", "FAILED", "--since", "7d", "--json", cwd=tmp_path))
    assert len(week) == 2
    iso_day = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
    assert len(_json(runner(env, "runs", "--status", "FAILED", "--since", iso_day, "--json", cwd=tmp_path))) == 1
    traced = _json(runner(env, "runs", "--trace", "T1", "--json", cwd=tmp_path))
    assert sorted(i["run_id"] for i in traced) == ["done-run", "oom-run"]

    table = runner(env, "runs", "--since", "24h", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["run_id", "status", "created_at"]
    listed = {line.split()[0] for line in lines[1:]}
    assert listed == {"oom-run", "done-run", "stuck-run"}
    assert "MemoryLimitExceeded" in table.stdout and "BTC/USDT +2" in table.stdout

    bad = runner(env, "runs", "--since", "yesterday-ish", cwd=tmp_path)
    assert bad.returncode == 2
    assert "--since='yesterday-ish'" in bad.stderr and "24h" in bad.stderr


def test_status_of_a_failed_run_says_what_happened_and_what_to_do(store, tmp_path):
    _seed(store)
    view = _json(runner(store.env, "status", "oom-run", "--json", cwd=tmp_path))
    assert view["status"] == "FAILED" and view["attempt"] == 1
    assert view["run"]["pairs"] == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert view["error"]["type"] == "MemoryLimitExceeded" and view["error"]["kind"] == PERMANENT
    assert "fewer pairs" in view["error"]["advice"] and "shorter TIMERANGE" in view["error"]["advice"]
    assert view["peak_memory_mb"] == 1990.5
    assert view["timeline"]["completed_at"] >= view["timeline"]["started_at"] >= view["timeline"]["created_at"]
    assert view["logs"]["trace_id"] == "T1"
    store_name = store.table if store.kind == "dynamodb" else ".status"
    assert store_name in view["store"]

    text = runner(store.env, "status", "oom-run", cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    for expected in ("FAILED", "MemoryLimitExceeded (permanent)", "what to do", "fewer pairs", "timeline", "T1"):
        assert expected in text.stdout


def test_status_of_a_stuck_ecs_run_points_at_its_log_stream(store, tmp_path):
    _seed(store)
    view = _json(runner(store.env, "status", "stuck-run", "--json", cwd=tmp_path))
    assert view["status"] == "RUNNING"
    assert view["timeline"]["stale"] is True and view["timeline"]["heartbeat_age_s"] >= 590
    assert view["error"]["type"] == "StaleHeartbeat" and "rerun the same RUN_ID" in view["error"]["advice"]
    cw = view["logs"]["cloudwatch"]
    assert cw["log_group"] == "/ecs/tradai-strategy-prod" and cw["region"] == "eu-west-1"
    assert cw["log_stream"] == "ecs/strategy/0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    assert "--log-stream-names ecs/strategy/0f1e2d3c4b5a69788796a5b4c3d2e1f0" in cw["tail"]
    assert '"T2"' in cw["by_trace"]


def test_status_of_an_unknown_run_fails_clearly(store, tmp_path):
    proc = runner(store.env, "status", "no-such-run", cwd=tmp_path)
    assert proc.returncode == 1
    assert "no run 'no-such-run'" in proc.stderr and proc.stdout == ""


def test_status_of_a_completed_run_with_unreachable_results_still_answers(store, tmp_path):
    _seed(store)
    view = _json(runner(store.env, "status", "done-run", "--json", cwd=tmp_path))
    assert view["metrics"] == {"profit_total": 0.0123, "total_trades": 42}
    assert view["error"] is None
    assert view["results"]["uri"] == "s3://nowhere-bucket/backtests/done-run/"
    if store.kind == "dynamodb":  # the bucket does not exist on the endpoint: shown, not fatal
        assert "NoSuchBucket" in view["results"]["error"]


def test_status_of_a_real_run_joins_results_mlflow_and_logs(run_env, tmp_path, aws, aws_name):
    """A real backtest with DynamoDB status and S3 results (moto) and the embedded MLflow store."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=aws_name)
    from strategy_runner.status.dynamodb import create_table

    create_table(aws.client("dynamodb"), aws_name)
    env = {**run_env, **aws.env, "DYNAMODB_TABLE": aws_name, "RESULTS_BUCKET": aws_name, "RUN_ID": "real-run",
           "PAIRS": "BTC/USDT", "TIMERANGE": "20240901-20240910", "RESULT_CACHE": "false"}
    done = runner(env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    status_env = {k: v for k, v in env.items() if k not in ("RUN_ID", "PAIRS", "TIMERANGE")}
    view = _json(runner(status_env, "status", "real-run", "--json", cwd=tmp_path))
    summary = json.loads((Path(env["RUNS_DIR"]) / "real-run" / "backtest-result.json").read_text())
    assert view["status"] == "COMPLETED"
    assert view["metrics"]["total_trades"] == summary["metrics"]["total_trades"]
    assert view["results"]["uri"] == f"s3://{aws_name}/backtests/real-run/"
    files = {f["name"]: f["size"] for f in view["results"]["files"]}
    local = Path(env["RUNS_DIR"]) / "real-run"
    for name in ("backtest-result.json", "trades.csv", "run.log", "manifest.json"):
        assert name in files, files
    assert files["trades.csv"] == (local / "trades.csv").stat().st_size
    assert view["mlflow"]["status"] == "FINISHED", view["mlflow"]
    assert view["mlflow"]["run_id"] == view["item"]["mlflow_run_id"]
    assert view["logs"]["local_run_log"] == str((local / "run.log").resolve())
    assert view["logs"]["cloudwatch"] is None  # ran here, not on ECS


def test_every_error_class_has_a_classification_and_concrete_advice():
    classes = {cls.error_name: cls for cls in errors._subclasses(errors.RunnerError)}
    for name, cls in classes.items():
        verdict = classify(name)
        assert verdict["kind"] == (TRANSIENT if cls.retryable else PERMANENT), name
        assert "read error_message" not in verdict["advice"], f"{name} has only the generic advice"
    for name in ("ValidationError", "ConfigurationError", "DataStaleError", "MemoryLimitExceeded"):
        assert classify(name)["kind"] == PERMANENT
    assert classify("SpotInterrupted")["kind"] == TRANSIENT
    assert classify("StaleLease", True) == {"kind": TRANSIENT, "advice": classify("StaleLease")["advice"]}
    assert "rerun the same RUN_ID" in classify("StaleLease")["advice"]
    assert classify("SomethingNew", True)["kind"] == TRANSIENT
    assert classify("SomethingNew")["kind"] == "unknown"
    assert classify(None) is None


@pytest.mark.parametrize("text,seconds", [("30m", 1800), ("24h", 86400), ("7d", 7 * 86400), ("90s", 90)])
def test_since_durations(text, seconds):
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert parse_since(text, now) == now_iso(now - timedelta(seconds=seconds))


def test_since_dates_and_bad_values():
    assert parse_since("2026-11-20") == "2026-11-20T00:00:00.000000Z"
    assert parse_since("2026-11-20T08:30:00Z") == "2026-11-20T08:30:00.000000Z"
    with pytest.raises(errors.ValidationError, match="--since='24 hours'"):
        parse_since("24 hours")


def test_an_unreachable_table_is_named_not_a_traceback(run_env, tmp_path):
    env = {**run_env, "DYNAMODB_TABLE": "tradai-workflow-state-test", "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    proc = runner(env, "runs", "--status", "FAILED", cwd=tmp_path, timeout=120)
    assert proc.returncode == 1
    assert "could not read the DynamoDB table tradai-workflow-state-test" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_status_of_a_reaped_run_says_rerun(store, tmp_path):
    from strategy_runner.reap import reap

    if not hasattr(store.store, "expire"):
        pytest.skip(f"{type(store.store).__name__} has no expire() (reap) yet")
    _seed(store)
    assert [i["run_id"] for i in reap(store.store, lease_seconds=120)] == ["stuck-run"]
    view = _json(runner(store.env, "status", "stuck-run", "--json", cwd=tmp_path))
    assert view["status"] == "FAILED"
    assert view["error"]["type"] == "StaleLease" and view["error"]["kind"] == TRANSIENT
    assert "rerun the same RUN_ID" in view["error"]["advice"]
    failed = _json(runner(store.env, "runs", "--status", "FAILED", "--since", "1h", "--json", cwd=tmp_path))
    assert {i["run_id"] for i in failed} == {"oom-run", "stuck-run"}
