"""Faults during and after a real backtest (contract points 2, 3, 5, 6, 7), and the cases that
already worked (kept so they keep working). Every case asserts the exit code, the item's
status/error_type/retryable, exactly one callback with the right name, the logs kept and
its time bound.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import psutil
import pytest

from tests.fixtures.dynamo_proxy import DynamoProxy, closed_port, hanging_port

from .stack import cloudwatch_matches, mlflow_run, mlflow_tags

RUN_BOUND_S = 90.0
STOP_BOUND_S = 30.0  # ECS stopTimeout default


def wait_for(predicate, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached in {timeout} s")


def phase_of(case, run_id=None):
    try:
        path = Path(case.env["RUNS_DIR"]) / (run_id or case.run_id) / ".worker" / "progress.json"
        return json.loads(path.read_text()).get("phase")
    except (OSError, ValueError):
        return None


def assert_failed(case, out, *, code: int, name: str, retryable: bool, status: str = "FAILED") -> dict:
    out.no_traceback()
    assert out.code == code, out.stderr[-3000:]
    item = case.item()
    assert item["status"] == status and item["error_type"] == name and item["retryable"] is retryable, item
    body = case.failed_with(name)
    assert "run.log" in case.s3_keys()
    return {"item": item, "callback": body}


def metrics_record(out) -> dict:
    records = [r for r in out.log_lines() if "_aws" in r]
    assert len(records) == 1, records
    return records[0]


# --- the happy path and replays ------------------------------------------------------------

def test_completed_run_is_recorded_then_reported(case):
    out = case.run(TRACKING="true")
    out.no_traceback()
    assert out.code == 0 and out.seconds < RUN_BOUND_S, out.stderr[-3000:]
    item = case.item()
    assert item["status"] == "COMPLETED" and item["results_uri"] == f"s3://{case.bucket}/backtests/{case.run_id}/"
    output = case.succeeded()
    assert output["status"] == "COMPLETED" and output["mlflow_run_id"] == item["mlflow_run_id"]
    assert case.sfn.heartbeats(case.token), "no heartbeat reached the orchestrator"
    assert {"run.log", "manifest.json", "backtest-result.json"} <= set(case.s3_keys())
    assert mlflow_run(case.env["MLFLOW_TRACKING_URI"], item["mlflow_run_id"])["info"]["status"] == "FINISHED"
    emf = metrics_record(out)  # one EMF record: BacktestDuration in TradAI/Backtest by Strategy
    cw = emf["_aws"]["CloudWatchMetrics"][0]
    assert cw["Namespace"] == "TradAI/Backtest" and cw["Dimensions"] == [["Strategy"], []]
    assert emf["Strategy"] == "Plain" and 0 < emf["BacktestDuration"] < out.seconds and emf["BacktestSucceeded"] == 1
    assert item["inputs"]["timerange"] == "20240101-20240106" and len(item["inputs_fingerprint"]) == 64


def test_completed_replay_reports_the_stored_result_without_recomputing(case):
    assert case.run().code == 0
    token = case.new_token()
    out = case.run(TASK_TOKEN=token)
    assert out.code == 0 and out.seconds < 20
    assert case.succeeded(token)["results_uri"] == case.item()["results_uri"]
    assert "worker started" not in out.stderr and case.item()["attempt"] == 1


@pytest.mark.parametrize(("change", "named"), [
    ({"TIMERANGE": "20240102-20240106"}, "timerange"),
    ({"STRATEGY": "Raises"}, "strategy"),
], ids=["other-timerange", "other-strategy"])
def test_completed_replay_with_other_inputs_is_a_conflict_naming_them(case, change, named):
    assert case.run().code == 0
    token = case.new_token()
    out = case.run(TASK_TOKEN=token, **change)
    out.no_traceback()
    assert out.code == 7 and out.seconds < 20
    cause = case.failed_with("RunConflict", token)["cause"]
    assert "already COMPLETED with other inputs" in cause and f"{named}:" in cause
    assert case.item()["status"] == "COMPLETED"  # untouched


# --- strategy and worker failures ------------------------------------------------------------

def test_strategy_raise_is_a_backtest_error_found_by_the_runbook_filter(case):
    out = case.run(STRATEGY="Raises", TRACKING="true")
    got = assert_failed(case, out, code=4, name="BacktestError", retryable=False)
    assert "divided by zero" in got["callback"]["cause"]
    assert [line for line in out.stderr.splitlines() if cloudwatch_matches("ERROR OR Exception", line)]
    run = mlflow_run(case.env["MLFLOW_TRACKING_URI"], got["item"]["mlflow_run_id"])
    assert run["info"]["status"] == "FAILED"
    tags = mlflow_tags(run)
    assert tags["error_type"] == "BacktestError" and "divided by zero" in tags["error_message"]


def test_a_600_kb_error_message_still_ends_the_item(case):
    out = case.run(STRATEGY="RaisesHuge")
    got = assert_failed(case, out, code=4, name="BacktestError", retryable=False)
    item = got["item"]
    assert len(item["error_message"]) <= 4000 and "characters cut" in item["error_message"]
    assert len(json.dumps(item)) < 64_000
    assert len(got["callback"]["cause"]) <= 32768


@pytest.mark.parametrize(("strategy", "fragment"), [
    ("ExitsZero", "exited with code 0"),
    ("Segfaults", "signal SIGSEGV"),
], ids=["os-exit-0", "segfault"])
def test_worker_dying_without_a_result_is_a_backtest_error(case, strategy, fragment):
    out = case.run(STRATEGY=strategy)
    got = assert_failed(case, out, code=4, name="BacktestError", retryable=False)
    assert fragment in got["item"]["error_message"]


def test_worker_sigkilled_far_below_its_limit_is_not_memory(case):
    proc = case.start(STRATEGY="Sleepy")
    wait_for(lambda: phase_of(case) == "analyze", what="phase analyze")
    time.sleep(0.5)
    worker = [c for c in psutil.Process(proc.pid).children() if "strategy_runner.worker" in " ".join(c.cmdline())]
    worker[0].kill()
    out = case.wait(proc)
    got = assert_failed(case, out, code=4, name="BacktestError", retryable=False)
    assert "not the out-of-memory killer" in got["item"]["error_message"]


def test_memory_refusal_is_found_by_the_runbook_filter_and_does_not_wait_for_tracking(case):
    out = case.run(MEMORY_LIMIT_MB="300", PAIRS="BTC/USDT,ETH/USDT,SOL/USDT", TIMERANGE="20240101-20250101",
                   TRACKING="true")
    got = assert_failed(case, out, code=5, name="MemoryLimitExceeded", retryable=False)
    assert out.seconds < 15, out.seconds  # a refusal never waits for the MLflow start
    assert [line for line in out.stderr.splitlines() if cloudwatch_matches("MemoryError OR OutOfMemory", line)]
    if got["item"].get("mlflow_run_id"):  # the start got as far as creating the run: it was closed
        status = mlflow_run(case.env["MLFLOW_TRACKING_URI"], got["item"]["mlflow_run_id"])["info"]["status"]
        assert status == "FAILED"


def test_missing_data_is_found_by_the_runbook_filter(case):
    out = case.run(PAIRS="BTC/USDT", TIMERANGE="20250201-20250301")
    assert_failed(case, out, code=3, name="DataStaleError", retryable=False)
    assert [line for line in out.stderr.splitlines() if cloudwatch_matches("insufficient data OR no data", line)]


# --- signals ---------------------------------------------------------------------------------

@pytest.mark.parametrize("phase", ["start", "analyze", "backtest"])
def test_sigterm_in_each_phase_is_a_retryable_spot_interruption(case, phase):
    strategy = "Sleepy" if phase == "analyze" else "Plain"
    timerange = "20240101-20240801" if phase == "backtest" else case.env["TIMERANGE"]  # a loop long enough to catch
    proc = case.start(STRATEGY=strategy, TIMERANGE=timerange, TRACKING="true")
    if phase == "start":
        wait_for(lambda: (case.item() or {}).get("status") == "RUNNING", what="RUNNING")
    else:
        wait_for(lambda: phase_of(case) == phase, timeout=90, what=f"phase {phase}")
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out = case.wait(proc)
    assert time.monotonic() - sent < STOP_BOUND_S
    got = assert_failed(case, out, code=75, name="SpotInterrupted", retryable=True)
    if got["item"].get("mlflow_run_id"):
        status = mlflow_run(case.env["MLFLOW_TRACKING_URI"], got["item"]["mlflow_run_id"])["info"]["status"]
        assert status == "KILLED"


def test_orchestrator_giving_up_cancels_without_a_callback(case):
    case.sfn.timed_out.add(case.token)
    out = case.run(STRATEGY="Sleepy")
    out.no_traceback()
    assert out.code == 8 and out.seconds < STOP_BOUND_S + 10
    assert case.item()["status"] == "CANCELLED"
    assert case.sfn.callbacks(case.token) == [] and case.sfn.heartbeats(case.token)


# --- tracking --------------------------------------------------------------------------------

def test_mlflow_down_does_not_fail_the_run(case):
    out = case.run(MLFLOW_TRACKING_URI=closed_port(), MLFLOW_TIMEOUT_SECONDS="4", TRACKING="true")
    assert out.code == 0 and out.seconds < RUN_BOUND_S
    item = case.item()
    assert item["status"] == "COMPLETED" and "MLflow" in item["tracking_error"]
    case.succeeded()


def test_mlflow_hanging_is_bounded_by_its_deadline(case):
    sock, url = hanging_port()
    try:
        out = case.run(MLFLOW_TRACKING_URI=url, MLFLOW_TIMEOUT_SECONDS="3", TRACKING="true")
    finally:
        sock.close()
    assert out.code == 0 and out.seconds < RUN_BOUND_S
    assert "deadline" in case.item()["tracking_error"] or "MLflow" in case.item()["tracking_error"]
    case.succeeded()


def test_credentials_in_the_tracking_uri_never_leave(case):
    uri = case.env["MLFLOW_TRACKING_URI"].replace("http://", "http://alice:s3cr3t-pw@")
    out = case.run(MLFLOW_TRACKING_URI=uri, STRATEGY="Snoops", TRACKING="true")
    assert out.code == 0, out.stderr[-2000:]
    local_log = (Path(case.env["RUNS_DIR"]) / case.run_id / "run.log").read_text()
    status = case.cli("status", case.run_id, MLFLOW_TRACKING_URI=uri)
    for where, text in (("stderr", out.stderr), ("run.log", local_log), ("S3 run.log", case.s3_text("run.log")),
                        ("status", status.stdout + status.stderr), ("item", json.dumps(case.item()))):
        assert "s3cr3t-pw" not in text, where
    # The worker (strategy code) saw neither the task token nor AWS secrets.
    env_line = next(line for line in local_log.splitlines() if "ENV" in line and "snoop" in line)
    assert "TASK_TOKEN" not in env_line and "AWS_SECRET_ACCESS_KEY" not in env_line and "RUN_ID" in env_line


# --- results ---------------------------------------------------------------------------------

def test_missing_results_bucket_is_permanent(case):
    out = case.run(RESULTS_BUCKET="no-such-bucket-here")
    out.no_traceback()
    assert out.code == 6 and out.seconds < RUN_BOUND_S
    item = case.item()
    assert item["status"] == "FAILED" and item["error_type"] == "ResultsAccessError" and item["retryable"] is False
    assert "no-such-bucket-here" in case.failed_with("ResultsAccessError")["cause"]
    assert (Path(case.env["RUNS_DIR"]) / case.run_id / "backtest-result.json").exists()


def test_s3_down_before_upload_is_retryable(case):
    out = case.run(AWS_ENDPOINT_URL_S3=closed_port())
    out.no_traceback()
    assert out.code == 6 and out.seconds < RUN_BOUND_S
    item = case.item()
    assert item["status"] == "FAILED" and item["error_type"] == "ResultsUploadError" and item["retryable"] is True
    case.failed_with("ResultsUploadError")


# --- the status store at the end, duplicates, reap ---------------------------------------------

def _drop_terminal_writes(op: str, body: dict) -> str:
    """The COMPLETED write fails (the service answers 500 to it); everything else goes through."""
    completes = op == "UpdateItem" and '"COMPLETED"' in json.dumps(body.get("ExpressionAttributeValues", {}))
    return "refuse" if completes else "forward"


def test_store_down_at_the_end_is_not_success_and_the_retry_completes_from_the_cache(case):
    proxy = DynamoProxy(case.aws.url, mode=_drop_terminal_writes).start()
    try:
        out = case.run(AWS_ENDPOINT_URL_DYNAMODB=proxy.url)
    finally:
        proxy.stop()
    out.no_traceback()
    assert out.code == 9 and out.seconds < RUN_BOUND_S
    case.failed_with("StatusStoreUnavailable")  # and no SendTaskSuccess: the outcome is not recorded
    assert case.item()["status"] == "RUNNING"
    # The workflow's Retry: same RUN_ID, a new token, 30 s later (here: at once).
    token = case.new_token()
    retry = case.run(TASK_TOKEN=token)
    assert retry.code == 0 and retry.seconds < 30, retry.stderr[-3000:]
    item = case.item()
    assert item["status"] == "COMPLETED" and item["attempt"] == 2 and item["cache_hit"] is True
    assert case.succeeded(token)["status"] == "COMPLETED"
    assert "worker started" not in retry.stderr  # recorded from the result cache, not recomputed


def test_ten_simultaneous_duplicates_claim_once(case):
    proxy = DynamoProxy(case.aws.url).start()  # DynamoDB's per-item atomicity in front of moto
    try:
        tokens = [case.new_token() for _ in range(10)]
        procs = [case.start(TASK_TOKEN=t, AWS_ENDPOINT_URL_DYNAMODB=proxy.url) for t in tokens]
        outs = [case.wait(p) for p in procs]
    finally:
        proxy.stop()
    # One attempt claims and computes; the others are refused while it runs (7), or, arriving
    # after it completed, are replays that report its result (0). Never two claims.
    assert sum("worker started" in o.stderr for o in outs) == 1, [o.code for o in outs]
    assert all(o.code in (0, 7) for o in outs) and sum(o.code == 7 for o in outs) >= 5, [o.code for o in outs]
    assert case.item()["status"] == "COMPLETED" and case.item()["attempt"] == 1
    for token, out in zip(tokens, outs, strict=True):  # each token: exactly one callback, the right one
        call = case.sfn.only_callback(token)
        assert call.op == ("SendTaskSuccess" if out.code == 0 else "SendTaskFailure")
        assert out.code == 0 or call.body["error"] == "RunConflict"


def test_reap_ends_a_dead_supervisor_and_its_mlflow_run(case):
    proc = case.start(STRATEGY="Sleepy", TRACKING="true")
    wait_for(lambda: phase_of(case) == "analyze", what="phase analyze")
    wait_for(lambda: (case.item() or {}).get("mlflow_run_id"), what="mlflow_run_id on the item")
    for child in psutil.Process(proc.pid).children(recursive=True):
        child.kill()
    proc.kill()
    proc.wait()
    time.sleep(1.5)
    reaped = case.cli("reap", "--lease-seconds", "1", "--json", TRACKING="true")
    assert reaped.returncode == 0, reaped.stderr
    item = case.item()
    assert item["status"] == "FAILED" and item["error_type"] == "StaleLease" and item["retryable"] is True
    assert mlflow_run(case.env["MLFLOW_TRACKING_URI"], item["mlflow_run_id"])["info"]["status"] == "KILLED"
    assert case.sfn.callbacks(case.token) == []  # SIGKILL: nobody could call back (HeartbeatTimeout's job)


def test_a_reaped_live_attempt_still_calls_back(case):
    proc = case.start(STRATEGY="Sleepy")
    wait_for(lambda: phase_of(case) == "analyze", what="phase analyze")
    reaped = case.cli("reap", "--lease-seconds", "0.001")
    assert reaped.returncode == 0, reaped.stderr
    out = case.wait(proc)
    out.no_traceback()
    assert out.code == 7 and out.seconds < RUN_BOUND_S
    assert case.item()["error_type"] == "StaleLease"  # the reap's verdict stays
    assert "no longer names this attempt" in case.failed_with("LeaseLost")["cause"]


def test_retryable_failure_is_taken_by_the_next_attempt(case):
    proc = case.start(STRATEGY="Sleepy")
    wait_for(lambda: phase_of(case) == "analyze", what="phase analyze")
    proc.send_signal(signal.SIGTERM)
    assert case.wait(proc).code == 75
    token = case.new_token()
    out = case.run(TASK_TOKEN=token, STRATEGY="Plain")
    # Other inputs under a retryable FAILED run are a new attempt, not a replay of a COMPLETED one.
    assert out.code == 0 and case.item()["attempt"] == 2
    case.succeeded(token)


def test_permanent_failure_replay_is_refused(case):
    assert case.run(STRATEGY="Raises").code == 4
    token = case.new_token()
    out = case.run(TASK_TOKEN=token, STRATEGY="Raises")
    assert out.code == 7 and out.seconds < 20
    case.failed_with("RunConflict", token)
    assert case.item()["error_type"] == "BacktestError"


def test_pending_item_with_a_backend_trace_id_is_claimed_and_keeps_it(case):
    case.aws.client("dynamodb").put_item(TableName=case.table, Item={
        "job_id": {"S": case.run_id}, "status": {"S": "PENDING"}, "trace_id": {"S": "backend-trace-1"},
        "created_at": {"S": "2026-01-01T00:00:00.000000Z"}})
    out = case.run()
    assert out.code == 0
    item = case.item()
    assert item["status"] == "COMPLETED" and item["trace_id"] == "backend-trace-1"
    assert all(r.get("trace_id") == "backend-trace-1" for r in out.log_lines() if r.get("event") == "run completed")


def test_mlflow_start_past_its_deadline_after_creating_the_run_still_closes_it(case):
    """The start step creates the run, then its tags take longer than the deadline: the id is
    on the item anyway and the run ends FINISHED, not RUNNING for ever."""
    from tests.fixtures.dynamo_proxy import SlowHttpProxy

    held = []

    def delay(method: str, path: str, body: bytes) -> float:
        # The start's tags (right after create_run; the finish's carry "outcome"), and the
        # client's retry of them: held past the start's deadline.
        if "runs/log-batch" in path and b'"attempt"' in body and b'"outcome"' not in body:
            held.append(path)
            return 16.0
        return 0.0

    proxy = SlowHttpProxy(case.env["MLFLOW_TRACKING_URI"], delay).start()
    try:
        out = case.run(MLFLOW_TRACKING_URI=proxy.url, MLFLOW_TIMEOUT_SECONDS="10", TRACKING="true")
    finally:
        proxy.stop()
    assert out.code == 0, out.stderr[-3000:]
    assert held, "the start never reached its tags"
    item = case.item()
    assert item["status"] == "COMPLETED" and item["mlflow_run_id"]
    assert "deadline" in out.stderr
    assert mlflow_run(case.env["MLFLOW_TRACKING_URI"], item["mlflow_run_id"])["info"]["status"] == "FINISHED"
    case.succeeded()


@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_unreadable_candle_file_is_a_data_error_naming_it(case, damage):
    import shutil

    data = case.tmp / "data"
    shutil.copytree(Path(case.env["DATA_DIR"]), data, ignore=shutil.ignore_patterns("futures"))
    candles = data / "BTC_USDT-5m.feather"
    raw = candles.read_bytes()
    candles.write_bytes(b"" if damage == "empty" else raw[: len(raw) // 3])
    out = case.run(DATA_DIR=str(data), RESULT_CACHE="false")
    got = assert_failed(case, out, code=3, name="DataStaleError", retryable=False)
    assert "BTC_USDT-5m.feather" in got["item"]["error_message"]


def test_mlflow_killed_mid_run_does_not_fail_it(case):
    """The tracking server goes away after the run was opened (here: the only way to it)."""
    from tests.fixtures.dynamo_proxy import SlowHttpProxy

    proxy = SlowHttpProxy(case.env["MLFLOW_TRACKING_URI"], lambda *_: 0.0).start()
    proc = case.start(MLFLOW_TRACKING_URI=proxy.url, MLFLOW_TIMEOUT_SECONDS="6", TRACKING="true",
                      TIMERANGE="20240101-20240401", STRATEGY="Plain")
    wait_for(lambda: (case.item() or {}).get("mlflow_run_id"), timeout=60, what="mlflow_run_id on the item")
    proxy.stop()  # the server is gone: connections are refused from now on
    out = case.wait(proc)
    out.no_traceback()
    assert out.code == 0 and out.seconds < RUN_BOUND_S
    item = case.item()
    assert item["status"] == "COMPLETED" and "MLflow" in item["tracking_error"]
    case.succeeded()
