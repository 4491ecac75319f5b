"""Fault injection against real runs (real Freqtrade, real worker process, the local stores):
every way a run ends leaves a terminal status, a reason, the logs and an exit code."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from strategy_runner.guard.estimate import REFUSE_FACTOR

from .faults import Run, mlflow_status, start, stop_quietly, write_strategies

SHORT = "20240101-20240115"  # two weeks of 5m: a few seconds of backtest
BUDGET_S = 30.0  # ECS stopTimeout default: SIGTERM, then SIGKILL 30 s later


@pytest.fixture
def env(run_env: dict[str, str], tmp_path: Path, mlflow_server) -> dict[str, str]:
    # The session's real MLflow server: each run's tracking is a few HTTP calls, and the
    # test can read the MLflow run's end state.
    return {**run_env, "STRATEGIES_DIR": str(write_strategies(tmp_path / "strategies")), "PAIRS": "BTC/USDT",
            "TIMERANGE": SHORT, "HEARTBEAT_INTERVAL_SECONDS": "1", "MLFLOW_TRACKING_URI": mlflow_server.uri}


@pytest.fixture
def runs(tmp_path: Path):
    started: list[Run] = []

    def go(env: dict[str, str], run_id: str, **overrides: str) -> Run:
        run = start(env, tmp_path, run_id, **overrides)
        started.append(run)
        return run

    yield go
    for run in started:
        stop_quietly(run)


def events(run: Run) -> list[str]:
    return [r.get("event", "") for r in run.log()]


# --- signals ---------------------------------------------------------------------------------

def test_sigterm_in_the_middle_of_a_real_backtest(env, runs):
    run = runs(env, "sigterm-loop", STRATEGY="EmaCrossSpot", TIMERANGE="20240101-20240501",
               STRATEGIES_DIR=str(Path(__file__).resolve().parents[2] / "strategies"))
    at = run.wait_for_phase("backtest")
    sent = time.monotonic()
    run.signal(signal.SIGTERM)
    code = run.wait(timeout=BUDGET_S + 30)
    latency = time.monotonic() - sent
    print(f"\nSIGTERM -> exit during {at}: {latency:.2f} s (budget {BUDGET_S:.0f} s), exit code {code}")
    item = run.item()
    assert code == 75
    assert item["status"] == "FAILED" and item["error_type"] == "SpotInterrupted" and item["retryable"] is True
    assert item["peak_memory_mb"] > 100 and item["progress"]["phase"] == "backtest"
    assert "backtest stopped on request during backtest" in " ".join(
        str(r.get("error")) for r in run.log() if r.get("process") == "worker")  # Freqtrade's abort flag
    assert (run.run_dir / "run.log").exists() and (run.run_dir / "manifest.json").exists()
    assert "run.log" in (run.run_dir / "manifest.json").read_text()
    assert mlflow_status(env["MLFLOW_TRACKING_URI"], item["mlflow_run_id"]) == "KILLED"
    assert latency < BUDGET_S


def test_sigint_outside_freqtrades_loop_and_a_second_signal(env, runs):
    """Indicators (Freqtrade does not poll its abort flag there): the worker stops at once.
    SIGINT counts as SIGTERM; a repeated signal does not disturb the stop under way."""
    run = runs(env, "sigint-analyze", STRATEGY="Sleepy")
    run.wait_for_phase("analyze")
    sent = time.monotonic()
    run.signal(signal.SIGINT)
    time.sleep(0.1)
    run.signal(signal.SIGTERM)  # ECS may repeat it
    code = run.wait(timeout=BUDGET_S + 30)
    latency = time.monotonic() - sent
    print(f"\nSIGINT -> exit during indicators: {latency:.2f} s")
    item = run.item()
    assert code == 75 and item["status"] == "FAILED" and item["error_type"] == "SpotInterrupted"
    assert item["retryable"] is True and item["error_message"].startswith("SIGINT received")
    assert "signal ignored: already stopping" in events(run)
    worker_errors = [str(r.get("error")) for r in run.log() if r.get("event") == "backtest failed"]
    # The supervisor passes the stop on as SIGTERM, whatever it received.
    assert worker_errors == ["SIGTERM received during phase analyze; backtest stopped"]
    assert latency < BUDGET_S


def test_a_worker_that_ignores_sigterm_is_killed_after_the_grace(env, runs):
    from strategy_runner.runner import STOP_GRACE_SECONDS

    run = runs(env, "stubborn", STRATEGY="Stubborn")
    run.wait_for_phase("analyze")
    time.sleep(0.5)  # let it install its SIG_IGN
    sent = time.monotonic()
    run.signal(signal.SIGTERM)
    code = run.wait(timeout=BUDGET_S + 30)
    latency = time.monotonic() - sent
    print(f"\nSIGTERM -> exit with a worker ignoring it: {latency:.2f} s (grace {STOP_GRACE_SECONDS:g} s)")
    item = run.item()
    assert code == 75 and item["status"] == "FAILED" and item["error_type"] == "SpotInterrupted"
    stopped = next(r for r in run.log() if r.get("event") == "worker stopped")
    assert stopped["returncode"] == -signal.SIGKILL
    assert STOP_GRACE_SECONDS <= latency < BUDGET_S


# --- memory ----------------------------------------------------------------------------------

def test_the_runtime_guard_stops_a_strategy_that_allocates(env, runs):
    run = runs(env, "hog", STRATEGY="MemoryHog", MEMORY_LIMIT_MB="900")
    code = run.wait(timeout=120)
    item = run.item()
    assert code == 5, run.stderr()[-2000:]  # the supervisor itself returned: it stayed alive
    assert item["status"] == "FAILED" and item["error_type"] == "MemoryLimitExceeded" and item["retryable"] is False
    assert item["peak_memory_mb"] > 0.9 * 900 and item["memory_limit_mb"] == 900
    assert item["memory_limit_source"] == "MEMORY_LIMIT_MB"
    message = item["error_message"]
    assert "past the limit 900 MiB (MEMORY_LIMIT_MB), soft limit 90% = 810 MiB" in message
    assert "during phase analyze" in message and "fewer pairs" in message
    assert item["peak_memory_mb"] < 3000  # stopped long before the strategy's 3 GiB
    print(f"\nguard: peak {item['peak_memory_mb']} MiB against a soft limit of 810 MiB")


def test_preflight_refuses_a_run_that_clearly_cannot_fit(env, runs):
    run = runs(env, "too-big", STRATEGY="Plain", PAIRS="BTC/USDT,ETH/USDT,SOL/USDT",
               TIMERANGE="20240101-20250101", MEMORY_LIMIT_MB="350")
    assert run.wait(timeout=60) == 5
    item = run.item()
    assert item["status"] == "FAILED" and item["error_type"] == "MemoryLimitExceeded"
    message = item["error_message"]
    assert "estimated ~" in message and "3 pair(s) x 366 days" in message and "350 MiB (MEMORY_LIMIT_MB)" in message
    assert "refused before loading any data" in message and "at most" in message and "more memory" in message
    assert "worker started" not in events(run) and not (run.run_dir / ".worker" / "progress.json").exists()
    estimate = float(message.split("estimated ~")[1].split(" MiB")[0])
    assert estimate > REFUSE_FACTOR * 350


def test_the_worker_killed_from_outside_far_below_its_limit_is_not_called_memory(env, runs):
    run = runs(env, "sigkill", STRATEGY="Sleepy")
    run.wait_for_phase("analyze")
    time.sleep(0.6)  # a few memory samples
    run.worker().kill()  # SIGKILL from outside, hundreds of MiB below the machine's memory
    assert run.wait(timeout=60) == 4
    item = run.item()
    assert item["status"] == "FAILED" and item["error_type"] == "BacktestError" and item["retryable"] is False
    message = item["error_message"]
    assert "killed by SIGKILL from outside the runner during phase analyze" in message
    assert "not the out-of-memory killer" in message
    assert "peak memory seen" in message and "unknown" not in message
    assert item["peak_memory_mb"] > 100
    assert mlflow_status(env["MLFLOW_TRACKING_URI"], item["mlflow_run_id"]) == "FAILED"
    assert "analyze" in item["traceback_tail"] or "Strategy" in item["traceback_tail"]  # the worker's last log lines


# --- other failures --------------------------------------------------------------------------

def test_a_strategy_that_raises(env, runs):
    run = runs(env, "raises", STRATEGY="Raises")
    assert run.wait(timeout=120) == 4
    item = run.item()
    assert item["status"] == "FAILED" and item["error_type"] == "BacktestError" and item["retryable"] is False
    assert "strategy bug: the entry rule divided by zero" in item["error_message"]
    tail = item["traceback_tail"]
    assert "ValueError: strategy bug" in tail and "Raises.py" in tail and "populate_entry_trend" in tail
    assert item["peak_memory_mb"] > 100 and (run.run_dir / "run.log").exists()


def test_a_worker_that_exits_0_without_results_is_a_failure(env, runs):
    run = runs(env, "exit0", STRATEGY="ExitsZero")
    assert run.wait(timeout=120) == 4
    item = run.item()
    assert item["status"] == "FAILED" and item["error_type"] == "BacktestError"
    assert "exited with code 0" in item["error_message"] and "this is a failure" in item["error_message"]
    assert "phase analyze" in item["error_message"]
    assert not (run.run_dir / "backtest-result.json").exists()


def test_a_plain_run_records_its_peak_and_limit_and_the_supervisor_stays_small(env, runs):
    import psutil

    run = runs(env, "plain", STRATEGY="Plain")
    supervisor = psutil.Process(run.proc.pid)
    own_peak = 0
    while run.proc.poll() is None:
        try:
            own_peak = max(own_peak, supervisor.memory_info().rss)
        except psutil.Error:
            break
        time.sleep(0.05)
    assert run.wait(timeout=120) == 0, run.stderr()[-2000:]
    item = run.item()
    assert item["status"] == "COMPLETED" and 100 < item["peak_memory_mb"] < item["memory_limit_mb"]
    assert item["memory_limit_source"]
    print(f"\nsupervisor RSS peak {own_peak / 2**20:.0f} MiB; run peak (supervisor + worker) {item['peak_memory_mb']} MiB")
    assert own_peak < 100 * 2**20
