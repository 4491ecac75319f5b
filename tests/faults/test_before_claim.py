"""Faults before the claim (contract point 1, 4): the store, RUNS_DIR and the input itself.

Each ends inside its time bound with a named error, its documented exit code, no raw
traceback, and exactly one SendTaskFailure carrying that name.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.fixtures.dynamo_proxy import DynamoProxy, closed_port, hanging_port

PRE_CLAIM_BOUND_S = 60.0


def test_missing_table_is_a_permanent_store_error(case):
    out = case.run(DYNAMODB_TABLE="no-such-table")
    out.no_traceback()
    assert out.code == 9 and out.seconds < PRE_CLAIM_BOUND_S
    body = case.failed_with("StatusStoreError")
    assert "no-such-table" in body["cause"] and "does not exist" in body["cause"]


def test_wrong_partition_key_is_a_permanent_store_error(case):
    out = case.run(DYNAMODB_KEY="run_id")
    out.no_traceback()
    assert out.code == 9 and out.seconds < PRE_CLAIM_BOUND_S
    assert "DYNAMODB_KEY='run_id'" in case.failed_with("StatusStoreError")["cause"]
    assert case.all_items() == []


def test_store_refusing_connections_is_transient(case):
    out = case.run(AWS_ENDPOINT_URL_DYNAMODB=closed_port())
    out.no_traceback()
    assert out.code == 9 and out.seconds < PRE_CLAIM_BOUND_S
    assert "Could not connect" in case.failed_with("StatusStoreUnavailable")["cause"]


def test_store_that_accepts_and_never_answers_is_bounded(case):
    sock, url = hanging_port()
    try:
        out = case.run(AWS_ENDPOINT_URL_DYNAMODB=url)
    finally:
        sock.close()
    out.no_traceback()
    assert out.code == 9 and out.seconds < PRE_CLAIM_BOUND_S, out.seconds
    assert "timeout" in case.failed_with("StatusStoreUnavailable")["cause"].lower()


def test_store_answering_5xx_is_transient(case):
    proxy = DynamoProxy(case.aws.url, mode="refuse").start()
    try:
        out = case.run(AWS_ENDPOINT_URL_DYNAMODB=proxy.url)
    finally:
        proxy.stop()
    out.no_traceback()
    assert out.code == 9 and out.seconds < PRE_CLAIM_BOUND_S
    case.failed_with("StatusStoreUnavailable")
    assert proxy.requests.count("UpdateItem") == 4  # the client's bounded retries, then the verdict


def _mount(target: Path, *options: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(target)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


def test_read_only_runs_dir_is_named(case):
    runs = case.tmp / "ro-runs"
    _mount(runs, "ro", "size=1m")
    try:
        out = case.run(RUNS_DIR=str(runs))
    finally:
        subprocess.run(["umount", str(runs)], check=False)
    out.no_traceback()
    assert out.code == 2 and out.seconds < PRE_CLAIM_BOUND_S
    assert "RUNS_DIR" in case.failed_with("ValidationError")["cause"]
    assert case.item() is None  # nothing claimed: nothing to clean up


def test_full_runs_dir_is_a_disk_full_error_with_the_path(case):
    runs = case.tmp / "full-runs"
    _mount(runs, "size=64k")
    try:
        (runs / "filler").write_bytes(b"\0" * 10**6) if False else None
        try:
            with open(runs / "filler", "wb") as fh:
                while True:
                    fh.write(b"\0" * 4096)
                    fh.flush()
        except OSError:
            pass
        out = case.run(RUNS_DIR=str(runs))
    finally:
        subprocess.run(["umount", str(runs)], check=False)
    out.no_traceback()
    assert out.code == 6 and out.seconds < 90
    body = case.failed_with("DiskFullError")
    assert str(runs) in body["cause"]


@pytest.mark.parametrize("bad", ["a/b", "../escape", "x" * 3000, "two words", "läuft", "run-1\n"],
                         ids=["slash", "dotdot", "3000-chars", "space", "non-ascii", "trailing-newline"])
def test_invalid_run_id_is_refused_as_itself(case, bad):
    out = case.run(RUN_ID=bad)
    out.no_traceback()
    assert out.code == 2 and out.seconds < PRE_CLAIM_BOUND_S
    assert "RUN_ID=" in case.failed_with("ValidationError")["cause"]
    assert case.all_items() == []  # no item under a generated local-… id either
    assert not (Path(case.env["RUNS_DIR"]).exists() and any(Path(case.env["RUNS_DIR"]).glob("local-*")))


def test_invalid_input_is_recorded_under_its_run_id_with_its_log(case):
    out = case.run(TIMERANGE="20240601-20240101")
    out.no_traceback()
    assert out.code == 2
    assert "TIMERANGE='20240601-20240101'" in case.failed_with("ValidationError")["cause"]
    item = case.item()
    assert item["status"] == "FAILED" and item["error_type"] == "ValidationError" and item["retryable"] is False
    assert "run.log" in case.s3_keys()  # kept where results go (contract point 6)


def test_unknown_strategy_is_recorded_with_its_log(case):
    out = case.run(STRATEGY="MomentumStrategy")
    assert out.code == 2
    assert "MomentumStrategy" in case.failed_with("ValidationError")["cause"]
    assert case.item()["status"] == "FAILED"
    assert "invalid input" in case.s3_text("run.log")


@pytest.mark.parametrize(("env", "fragment"), [
    ({"LEASE_SECONDS": "2", "HEARTBEAT_INTERVAL_SECONDS": "1"}, "LEASE_SECONDS=2 must be at least 3"),
    ({"HEARTBEAT_INTERVAL_SECONDS": "0.1"}, "HEARTBEAT_INTERVAL_SECONDS='0.1'"),
], ids=["lease-under-3-heartbeats", "heartbeat-too-fast"])
def test_lease_and_heartbeat_bounds_fail_before_any_work(case, env, fragment):
    out = case.run(**env)
    assert out.code == 2 and out.seconds < PRE_CLAIM_BOUND_S
    assert fragment in case.failed_with("ValidationError")["cause"]
    assert "worker started" not in out.stderr
