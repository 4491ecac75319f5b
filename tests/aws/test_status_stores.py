"""The local and the DynamoDB status store implement the same lifecycle.

The scenarios run against both stores (parametrized); the exhaustive test seeds both with
every kind of item, applies every operation, and checks each store against ``lifecycle``
and against each other. DynamoDB is the emulator from tests/fixtures/aws.py over HTTP.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from strategy_runner.lifecycle import ClaimKind, Decision, Status, claim_kind, finish_decision
from strategy_runner.status.base import TransitionRefused, iso_ago, now_iso
from strategy_runner.status.dynamodb import DynamoDBStatusStore, create_table, to_dynamo
from strategy_runner.status.local import LocalStatusStore

LEASE = 600.0
ME, OTHER = "arn:aws:ecs:us-east-1:123456789012:task/tradai/me", "arn:aws:ecs:us-east-1:123456789012:task/tradai/other"
FIELDS = {"trace_id": "trace-1", "strategy": "EmaCrossFutures", "pairs": ["BTC/USDT:USDT"], "timerange": "20240101-20240601"}
TIMESTAMPS = ("created_at", "started_at", "updated_at", "completed_at", "heartbeat_at")


class Seeder:
    """Writes an item as the backend or the workflow would, bypassing the store's rules."""

    def __init__(self, store: Any):
        self.store = store

    def put(self, run_id: str, item: dict[str, Any]) -> None:
        item = {"run_id": run_id, **item}
        if isinstance(self.store, LocalStatusStore):
            self.store.root.mkdir(parents=True, exist_ok=True)
            self.store._path(run_id).write_text(json.dumps(item))
        else:
            from boto3.dynamodb.types import TypeSerializer

            ser = TypeSerializer()
            raw = {k: ser.serialize(to_dynamo(v)) for k, v in {self.store.key: run_id, **item}.items()}
            self.store.client.put_item(TableName=self.store.table, Item=raw)


@pytest.fixture
def dynamodb_store(aws, aws_name) -> DynamoDBStatusStore:
    client = aws.client("dynamodb")
    create_table(client, aws_name)
    return DynamoDBStatusStore(client, aws_name)


@pytest.fixture(params=["local", "dynamodb"])
def store(request, tmp_path: Path):
    if request.param == "local":
        return LocalStatusStore(tmp_path / "runs")
    return request.getfixturevalue("dynamodb_store")


def claim(store, run_id="r1", owner=ME):
    return store.claim(run_id, owner=owner, lease_seconds=LEASE, fields=FIELDS)


# --- scenarios, the same for both stores --------------------------------------------------

def test_claim_creates_the_item_running(store):
    c = claim(store)
    assert c.kind == ClaimKind.CLAIMED
    item = store.get("r1")
    assert item == c.item
    assert item["status"] == "RUNNING" and item["owner"] == ME and item["attempt"] == 1
    assert item["run_id"] == "r1" and item["pairs"] == ["BTC/USDT:USDT"] and item["trace_id"] == "trace-1"
    assert item["created_at"] == item["started_at"] == item["heartbeat_at"]


def test_claim_takes_a_pending_item_and_keeps_backend_fields(store):
    Seeder(store).put("r1", {"status": "PENDING", "created_at": "2026-01-01T00:00:00.000000Z", "requested_by": "api"})
    c = claim(store)
    assert c.kind == ClaimKind.CLAIMED
    assert c.item["created_at"] == "2026-01-01T00:00:00.000000Z" and c.item["requested_by"] == "api"
    assert c.item["attempt"] == 1


def test_a_live_run_under_another_owner_is_refused_untouched(store):
    claim(store, owner=OTHER)
    before = store.get("r1")
    c = claim(store, owner=ME)
    assert c.kind == ClaimKind.REFUSED and c.item == before
    assert store.get("r1") == before


def test_a_stale_run_is_taken_over_with_attempt_plus_one(store):
    Seeder(store).put("r1", {"status": "RUNNING", "owner": OTHER, "attempt": 1, "created_at": iso_ago(3600),
                             "heartbeat_at": iso_ago(LEASE + 60)})
    c = claim(store)
    assert c.kind == ClaimKind.CLAIMED and c.item["owner"] == ME and c.item["attempt"] == 2


def test_running_written_by_the_workflow_without_owner_is_ours(store):
    Seeder(store).put("r1", {"status": "RUNNING", "created_at": now_iso()})
    assert claim(store).kind == ClaimKind.CLAIMED


def test_completed_is_reported_not_recomputed(store):
    Seeder(store).put("r1", {"status": "COMPLETED", "results_uri": "s3://b/backtests/r1/", "summary": {"sharpe": 1.5}})
    before = store.get("r1")
    c = claim(store)
    assert c.kind == ClaimKind.COMPLETED and c.item["results_uri"] == "s3://b/backtests/r1/"
    assert c.item["summary"] == {"sharpe": 1.5}
    assert store.get("r1") == before


def test_failed_retryable_is_retried_and_clears_the_error(store):
    Seeder(store).put("r1", {"status": "FAILED", "retryable": True, "attempt": 1, "error_type": "SpotInterrupted",
                             "error_message": "SIGTERM", "created_at": now_iso()})
    c = claim(store)
    assert c.kind == ClaimKind.CLAIMED and c.item["attempt"] == 2 and c.item["retryable"] is False
    assert "error_type" not in c.item and "error_message" not in c.item


@pytest.mark.parametrize("item", [{"status": "FAILED", "retryable": False}, {"status": "CANCELLED"}])
def test_terminal_not_retryable_is_refused(store, item):
    Seeder(store).put("r1", item)
    assert claim(store).kind == ClaimKind.REFUSED


def test_finish_replay_is_a_noop_and_a_conflict_raises(store):
    claim(store)
    done = store.finish("r1", Status.COMPLETED, owner=ME, fields={"results_uri": "s3://b/k/", "summary": {"sharpe": 0.25}})
    assert done["status"] == "COMPLETED" and done["completed_at"] and done["summary"] == {"sharpe": 0.25}
    again = store.finish("r1", Status.COMPLETED, owner=ME, fields={"results_uri": "s3://elsewhere/"})
    assert again == done == store.get("r1")
    with pytest.raises(TransitionRefused):
        store.finish("r1", Status.FAILED, owner=ME, fields={})
    assert store.get("r1") == done


def test_only_the_owner_ends_a_running_run(store):
    claim(store, owner=OTHER)
    with pytest.raises(TransitionRefused):
        store.finish("r1", Status.FAILED, owner=ME, fields={"error_type": "X"})
    assert store.get("r1")["status"] == "RUNNING"


def test_failing_before_start_creates_a_failed_item(store):
    item = store.finish("r9", Status.FAILED, owner=ME, fields={"error_type": "ValidationError", "peak_memory_mb": None})
    assert item["status"] == "FAILED" and item["error_type"] == "ValidationError" and item.get("peak_memory_mb") is None
    with pytest.raises(TransitionRefused):  # nothing reaches COMPLETED without RUNNING
        store.finish("r8", Status.COMPLETED, owner=ME, fields={})


def test_touch_only_while_ours_and_running(store):
    claim(store)
    assert store.touch("r1", owner=ME, fields={"heartbeat_at": now_iso(), "progress": {"phase": "backtest", "fraction": 0.5}})
    assert store.get("r1")["progress"] == {"phase": "backtest", "fraction": 0.5}
    assert store.touch("r1", owner=ME, fields={"progress": None})
    assert store.get("r1").get("progress") is None
    assert not store.touch("r1", owner=OTHER, fields={"progress": {"phase": "x"}})
    assert not store.touch("nope", owner=ME, fields={})
    store.finish("r1", Status.CANCELLED, owner=ME, fields={})
    assert not store.touch("r1", owner=ME, fields={"heartbeat_at": now_iso()})


def test_query_by_status_newest_first_and_by_trace(store):
    seed = Seeder(store)
    seed.put("a", {"status": "FAILED", "created_at": "2026-01-01T00:00:00.000000Z", "trace_id": "t1"})
    seed.put("b", {"status": "FAILED", "created_at": "2026-01-03T00:00:00.000000Z", "trace_id": "t2"})
    seed.put("c", {"status": "FAILED", "created_at": "2026-01-02T00:00:00.000000Z", "trace_id": "t1"})
    seed.put("d", {"status": "COMPLETED", "created_at": "2026-01-04T00:00:00.000000Z", "trace_id": "t1"})
    assert [i["run_id"] for i in store.query(status=Status.FAILED)] == ["b", "c", "a"]
    assert [i["run_id"] for i in store.query(status=Status.FAILED, since="2026-01-02T00:00:00.000000Z")] == ["b", "c"]
    assert [i["run_id"] for i in store.query(trace_id="t1")] == ["d", "c", "a"]
    assert store.query(status=Status.RUNNING) == []


def test_floats_come_back_as_numbers(store):
    claim(store)
    store.finish("r1", Status.COMPLETED, owner=ME, fields={
        "summary": {"profit_total": 0.036896728670000004, "sharpe": float("nan"), "total_trades": 41.0},
        "peak_memory_mb": 351.5})
    item = store.get("r1")
    assert item["summary"]["profit_total"] == pytest.approx(0.036896728670000004, rel=0, abs=0)
    assert item["summary"]["total_trades"] == 41 and item["peak_memory_mb"] == 351.5


# --- every seeded item x every operation: both stores agree with lifecycle and each other ---

SEEDS: dict[str, dict[str, Any] | None] = {
    "none": None,
    "no-status": {"created_at": "2026-01-01T00:00:00.000000Z"},
    "pending": {"status": "PENDING"},
    "running-no-owner": {"status": "RUNNING"},
    "running-empty-owner": {"status": "RUNNING", "owner": ""},
    "running-mine": {"status": "RUNNING", "owner": ME, "heartbeat_at": "FRESH", "attempt": 1},
    "running-other-fresh": {"status": "RUNNING", "owner": OTHER, "heartbeat_at": "FRESH", "attempt": 1},
    "running-other-stale": {"status": "RUNNING", "owner": OTHER, "heartbeat_at": "STALE", "attempt": 1},
    "running-other-no-heartbeat-fresh-start": {"status": "RUNNING", "owner": OTHER, "started_at": "FRESH"},
    "running-other-no-heartbeat": {"status": "RUNNING", "owner": OTHER},
    "completed": {"status": "COMPLETED", "owner": OTHER, "results_uri": "s3://b/x/"},
    "failed-retryable": {"status": "FAILED", "retryable": True, "attempt": 2, "error_type": "SpotInterrupted"},
    "failed": {"status": "FAILED", "retryable": False, "error_type": "BacktestError"},
    "cancelled": {"status": "CANCELLED"},
}
OPERATIONS = ["claim", "COMPLETED", "FAILED", "CANCELLED"]


def _materialise(seed: dict[str, Any] | None) -> dict[str, Any] | None:
    if seed is None:
        return None
    fresh, stale = now_iso(), iso_ago(LEASE + 120)
    return {k: {"FRESH": fresh, "STALE": stale}.get(v, v) if isinstance(v, str) else v for k, v in seed.items()}


def _normalised(item: dict[str, Any] | None, seeded: dict[str, Any] | None) -> dict[str, Any] | None:
    """Comparable across stores: no table key, no None, new timestamps as a marker."""
    if item is None:
        return None
    out = {}
    for k, v in item.items():
        if k == "job_id" or v is None:
            continue
        if k in TIMESTAMPS and (seeded or {}).get(k) != v:
            v = "<new>"
        out[k] = v
    return out


def _apply(store, op: str, run_id: str) -> tuple[str, dict[str, Any] | None]:
    if op == "claim":
        return claim(store, run_id).kind.value, store.get(run_id)
    try:
        store.finish(run_id, Status(op), owner=ME, fields={"note": op})
        return "ok", store.get(run_id)
    except TransitionRefused:
        return "refused", store.get(run_id)


@pytest.mark.parametrize("op", OPERATIONS)
def test_both_stores_follow_lifecycle_identically(op, dynamodb_store, tmp_path):
    local = LocalStatusStore(tmp_path / "runs")
    for name, seed in SEEDS.items():
        run_id = f"{name}-{op}"
        seeded = _materialise(seed)
        results = {}
        for store in (local, dynamodb_store):
            if seeded is not None:
                Seeder(store).put(run_id, seeded)
            before = store.get(run_id)
            outcome, after = _apply(store, op, run_id)
            results[type(store).__name__] = (outcome, _normalised(after, before))
            # lifecycle, the pure rules, decides what must have happened.
            if op == "claim":
                expected = claim_kind(before, owner=ME, stale_before=iso_ago(LEASE)).value
                assert outcome == expected, (name, type(store).__name__)
                wrote = outcome == ClaimKind.CLAIMED
            else:
                decision = finish_decision(before, Status(op), owner=ME)
                assert outcome == ("refused" if decision == Decision.REFUSE else "ok"), (name, type(store).__name__)
                wrote = decision == Decision.APPLY
            if wrote:
                assert after["status"] == ("RUNNING" if op == "claim" else op)
            else:
                assert after == before, f"{name}: {type(store).__name__} wrote on {outcome}"
        assert results["LocalStatusStore"] == results["DynamoDBStatusStore"], name


# --- contract points 1 and 2: caps, a kept trace_id, a dead owner, named store errors -------

def test_growing_fields_are_capped_far_below_the_item_limit(store):
    claim(store)
    huge = "x" * 600_000
    item = store.finish("r1", Status.FAILED, owner=ME, fields={
        "error_message": huge, "traceback_tail": huge, "progress": {"phase": "p" * 300_000},
        "summary": {f"k{i}": "v" * 1000 for i in range(200)}})
    assert item["status"] == "FAILED" and len(json.dumps(item)) < 64_000
    assert item["error_message"].endswith("characters cut]") and len(item["error_message"]) <= 4000


def test_a_recorded_trace_id_is_kept(store):
    Seeder(store).put("r1", {"status": "PENDING", "trace_id": "from-backend", "created_at": now_iso()})
    assert claim(store).item["trace_id"] == "from-backend"
    assert store.finish("r1", Status.COMPLETED, owner=ME, fields={"trace_id": "other"})["trace_id"] == "from-backend"


def test_a_gone_owner_is_taken_over_despite_a_fresh_heartbeat(store):
    claim(store, owner=OTHER)
    assert claim(store).kind == ClaimKind.REFUSED
    taken = store.claim("r1", owner=ME, lease_seconds=LEASE, fields=FIELDS, gone_owner=OTHER)
    assert taken.kind == ClaimKind.CLAIMED and taken.item["owner"] == ME and taken.item["attempt"] == 2
    # Naming a dead owner that is not the holder changes nothing.
    assert store.claim("r1", owner="third", lease_seconds=LEASE, fields=FIELDS,
                       gone_owner=OTHER).kind == ClaimKind.REFUSED


def test_store_errors_are_named_permanent_or_transient(aws, aws_name):
    from strategy_runner.errors import StatusStoreError, StatusStoreUnavailable

    client = aws.client("dynamodb")
    with pytest.raises(StatusStoreError, match="does not exist") as missing:
        DynamoDBStatusStore(client, "no-such-table").claim("r1", owner=ME, lease_seconds=LEASE, fields=FIELDS)
    assert not missing.value.retryable
    create_table(client, aws_name)
    with pytest.raises(StatusStoreError, match="DYNAMODB_KEY='run_id'"):
        DynamoDBStatusStore(client, aws_name, key="run_id").get("r1")
    import boto3
    from botocore.config import Config

    dead = boto3.client("dynamodb", endpoint_url="http://127.0.0.1:9", region_name="us-east-1",
                        aws_access_key_id="x", aws_secret_access_key="x",
                        config=Config(retries={"total_max_attempts": 1}, connect_timeout=1))
    with pytest.raises(StatusStoreUnavailable) as down:
        DynamoDBStatusStore(dead, aws_name).get("r1")
    assert down.value.retryable
