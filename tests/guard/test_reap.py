"""``strategy-runner reap``: stale RUNNING runs become FAILED (StaleLease), live ones are left alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from strategy_runner.lifecycle import ClaimKind, Status
from strategy_runner.reap import ERROR_TYPE, reap
from strategy_runner.status.base import iso_ago
from strategy_runner.status.local import LocalStatusStore

LEASE = 600.0
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["local", "dynamodb"])
def store(request, tmp_path: Path):
    if request.param == "local":
        return LocalStatusStore(tmp_path / "runs")
    from strategy_runner.status.dynamodb import DynamoDBStatusStore, create_table

    aws, name = request.getfixturevalue("aws"), request.getfixturevalue("aws_name")
    create_table(aws.client("dynamodb"), name)
    return DynamoDBStatusStore(aws.client("dynamodb"), name)


def seed(store, item: dict) -> None:
    """Write an item the way the workflow would, bypassing the store's rules."""
    if isinstance(store, LocalStatusStore):
        store.root.mkdir(parents=True, exist_ok=True)
        store._path(item["run_id"]).write_text(json.dumps(item))
        return
    from boto3.dynamodb.types import TypeSerializer

    from strategy_runner.status.dynamodb import to_dynamo

    raw = {k: TypeSerializer().serialize(to_dynamo(v)) for k, v in {store.key: item["run_id"], **item}.items()}
    store.client.put_item(TableName=store.table, Item=raw)


def running(store, run_id: str, owner: str, heartbeat_age: float) -> dict:
    claim = store.claim(run_id, owner=owner, lease_seconds=LEASE, fields={"trace_id": "t", "strategy": "S"})
    assert claim.kind == ClaimKind.CLAIMED
    assert store.touch(run_id, owner=owner, fields={"heartbeat_at": iso_ago(heartbeat_age)})
    return store.get(run_id)


def test_reap_fails_a_stale_run_and_leaves_a_fresh_one_alone(store):
    running(store, "stale", "host:1", heartbeat_age=3600)
    fresh = running(store, "fresh", "host:2", heartbeat_age=5)
    done = running(store, "done", "host:3", heartbeat_age=3600)
    store.finish("done", Status.COMPLETED, owner="host:3", fields={})

    reaped = reap(store, lease_seconds=LEASE)

    assert [i["run_id"] for i in reaped] == ["stale"]
    item = store.get("stale")
    assert item["status"] == "FAILED" and item["error_type"] == ERROR_TYPE and item["retryable"] is True
    assert "no heartbeat since" in item["error_message"] and "host:1" in item["error_message"]
    assert item["completed_at"] and item["reaped_at"]
    assert store.get("fresh") == fresh  # not even rewritten
    assert store.get("done")["status"] == "COMPLETED" and done["run_id"] == "done"
    assert reap(store, lease_seconds=LEASE) == []  # safe to run again on a schedule


def test_the_write_is_conditional_on_the_heartbeat_still_being_stale(store):
    running(store, "r1", "host:1", heartbeat_age=3600)
    stale_before = iso_ago(LEASE)  # what reap computed ...
    assert store.touch("r1", owner="host:1", fields={"heartbeat_at": iso_ago(0)})  # ... then the run beat
    assert store.expire("r1", stale_before=stale_before, fields={"error_type": ERROR_TYPE}) is None
    assert store.get("r1")["status"] == "RUNNING"
    assert store.expire("nope", stale_before=stale_before, fields={}) is None


def test_a_reaped_attempt_learns_it_at_its_next_heartbeat_and_a_retry_takes_over(store):
    running(store, "r1", "host:1", heartbeat_age=3600)
    reap(store, lease_seconds=LEASE)
    assert store.touch("r1", owner="host:1", fields={"heartbeat_at": iso_ago(0)}) is False
    retry = store.claim("r1", owner="host:9", lease_seconds=LEASE, fields={})
    assert retry.kind == ClaimKind.CLAIMED and retry.item["attempt"] == 2 and "error_type" not in retry.item


def test_a_running_item_without_any_heartbeat_counts_from_when_it_was_written(store):
    """The workflow may write RUNNING itself; a container still starting is not reaped."""
    seed(store, {"run_id": "wf-old", "status": "RUNNING", "created_at": iso_ago(7200), "updated_at": iso_ago(7200)})
    seed(store, {"run_id": "wf-new", "status": "RUNNING", "created_at": iso_ago(7200), "updated_at": iso_ago(10)})
    assert [i["run_id"] for i in reap(store, lease_seconds=LEASE)] == ["wf-old"]
    assert store.get("wf-new")["status"] == "RUNNING"
    if isinstance(store, LocalStatusStore):  # DynamoDB: no created_at, not in the status GSI at all
        seed(store, {"run_id": "bare", "status": "RUNNING"})
        assert [i["run_id"] for i in reap(store, lease_seconds=LEASE)] == ["bare"]


def test_the_cli_reaps_prints_and_dry_runs(store, tmp_path: Path):
    running(store, "stale", "host:1", heartbeat_age=3600)
    running(store, "fresh", "host:2", heartbeat_age=1)
    env = {"RUNS_DIR": str(tmp_path / "runs"), "PATH": "/usr/bin:/bin"}
    if not isinstance(store, LocalStatusStore):  # the status GSI through the emulator
        from tests.fixtures.aws import CREDENTIALS, REGION

        env.update(DYNAMODB_TABLE=store.table, AWS_ENDPOINT_URL=store.client.meta.endpoint_url,
                   AWS_REGION=REGION, **CREDENTIALS)

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "strategy_runner", "reap", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)

    dry = cli("--dry-run")
    assert dry.returncode == 0 and "would reap stale" in dry.stdout and "fresh" not in dry.stdout
    assert store.get("stale")["status"] == "RUNNING"
    out = cli("--json", "--lease-seconds", "600")
    assert out.returncode == 0, out.stderr
    assert [i["run_id"] for i in json.loads(out.stdout)] == ["stale"]
    assert store.get("stale")["status"] == "FAILED" and store.get("fresh")["status"] == "RUNNING"
    assert "reaped 0 run(s)" in cli().stdout
    bad = cli("--lease-seconds", "0")
    assert bad.returncode == 2 and "--lease-seconds" in bad.stderr


def test_reap_also_ends_the_dead_attempts_mlflow_run(mlflow_server, tmp_path: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_server.uri)
    experiment = client.create_experiment(f"reap-{tmp_path.name}")
    left_open = client.create_run(experiment).info.run_id  # what a SIGKILLed container leaves behind
    store = LocalStatusStore(tmp_path / "runs")
    running(store, "dead", "host:9", heartbeat_age=3600)
    store.touch("dead", owner="host:9", fields={"mlflow_run_id": left_open})
    env = {"RUNS_DIR": str(tmp_path / "runs"), "PATH": "/usr/bin:/bin", "MLFLOW_TRACKING_URI": mlflow_server.uri}
    out = subprocess.run([sys.executable, "-m", "strategy_runner", "reap", "--json"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    (reaped,) = json.loads(out.stdout)
    assert reaped["run_id"] == "dead" and "tracking_error" not in reaped
    run = client.get_run(left_open)
    assert run.info.status == "KILLED"
    assert "no heartbeat since" in run.data.tags["close_reason"]
