"""MLflow tracking end to end: real backtests (runner subprocess) against a real
``mlflow server`` subprocess, read back with MlflowClient."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import runner

SHORT = {"TIMERANGE": "20240901-20240915", "PAIRS": "BTC/USDT", "TIMEFRAME": "5m"}

BROKEN_STRATEGY = '''
from freqtrade.strategy import IStrategy


class BrokenStrategy(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "5m"
    minimal_roi = {"0": 0.04}
    stoploss = -0.03

    def populate_indicators(self, dataframe, metadata):
        raise RuntimeError("strategy bug on purpose")

    def populate_entry_trend(self, dataframe, metadata):
        return dataframe

    def populate_exit_trend(self, dataframe, metadata):
        return dataframe
'''


def status_item(env: dict[str, str], run_id: str) -> dict:
    return json.loads((Path(env["RUNS_DIR"]) / ".status" / f"{run_id}.json").read_text())


def tracked_env(run_env: dict[str, str], uri: str, **extra: str) -> dict[str, str]:
    run_id = f"t-{uuid.uuid4().hex[:10]}"
    return {**run_env, **SHORT, "MLFLOW_TRACKING_URI": uri, "RUN_ID": run_id,
            "TRACE_ID": uuid.uuid4().hex, "EXPERIMENT_NAME": f"exp-{uuid.uuid4().hex[:8]}",
            "MLFLOW_TIMEOUT_SECONDS": "90", **extra}


def runs_tagged(client: MlflowClient, experiment: str, run_id: str) -> list:
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"experiment {experiment} was not created"
    return client.search_runs([exp.experiment_id], filter_string=f"tags.run_id = '{run_id}'")


@pytest.mark.parametrize("client_kind", ["auto", "library"])
def test_backtest_is_logged_to_the_tracking_server(mlflow_server, run_env, tmp_path, client_kind):
    """auto: the REST client in the supervisor (tracking/rest.py); library: the mlflow child process."""
    env = tracked_env(run_env, mlflow_server.uri, MLFLOW_CLIENT=client_kind)
    proc = runner(env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = Path(env["RUNS_DIR"]) / env["RUN_ID"]
    summary = json.loads((run_dir / "backtest-result.json").read_text())
    item = status_item(env, env["RUN_ID"])
    assert item["status"] == "COMPLETED"
    assert "tracking_error" not in item
    started = next(json.loads(line) for line in (run_dir / "run.log").read_text().splitlines()
                   if '"MLflow run started"' in line)
    assert started["client"] == ("rest" if client_kind == "auto" else "library")

    client = MlflowClient(mlflow_server.uri)
    [run] = runs_tagged(client, env["EXPERIMENT_NAME"], env["RUN_ID"])
    assert item["mlflow_run_id"] == run.info.run_id
    assert run.info.status == "FINISHED"
    assert run.info.run_name == env["RUN_ID"]

    tags = run.data.tags
    ident = summary["identity"]
    assert tags["run_id"] == env["RUN_ID"]
    assert tags["trace_id"] == env["TRACE_ID"]
    assert tags["strategy"] == "EmaCrossSpot"
    assert tags["timeframe"] == "5m"
    assert tags["trading_mode"] == "spot"
    assert tags["freqtrade_version"] == ident["freqtrade_version"]
    assert tags["runner_version"] == ident["runner_version"]
    assert tags["data_fingerprint"] == ident["data_fingerprint"]
    assert tags["config_hash"] == ident["config_hash"]
    assert tags["image"] == ident["image"]
    assert tags["owner"] == item["owner"]
    assert tags["attempt"] == "1"
    assert tags["outcome"] == "FINISHED"

    params = run.data.params
    assert params["timerange"] == "20240901-20240915"
    assert params["pairs"] == "BTC/USDT"
    assert params["stake_amount"] == str(summary["stake"]["stake_amount"])
    assert params["max_open_trades"] == str(summary["stake"]["max_open_trades"])
    assert params["stake_currency"] == summary["stake"]["stake_currency"]

    metrics = run.data.metrics
    assert summary["metrics"]["total_trades"] > 0
    for key, value in summary["metrics"].items():
        assert metrics[key] == pytest.approx(value, rel=1e-12), key
    [pair] = summary["per_pair"]
    assert metrics["pair.BTC_USDT.profit_total"] == pytest.approx(pair["profit_total"], rel=1e-12)
    assert metrics["pair.BTC_USDT.trades"] == pair["trades"]
    for key, value in summary["durations"].items():
        assert metrics[f"duration.{key}"] == pytest.approx(value), key
    assert metrics["peak_memory_mb"] > 0
    # The equity curve as a metric history, which MLflow's own charts draw: start, one point per trade.
    equity = sorted(client.get_metric_history(run.info.run_id, "equity"), key=lambda m: m.step)
    start = summary["stake"]["dry_run_wallet"]
    assert len(equity) == summary["metrics"]["total_trades"] + 1
    assert equity[0].value == start
    assert equity[-1].value == pytest.approx(start + summary["metrics"]["profit_total_abs"], rel=1e-9)
    assert [m.timestamp for m in equity] == sorted(m.timestamp for m in equity)

    listed = {a.path for a in client.list_artifacts(run.info.run_id)}
    expected = {"backtest-result.json", summary["files"]["freqtrade_zip"], "trades.csv", "run.log",
                "freqtrade-report.txt"}
    assert expected <= listed, listed
    assert tags["artifacts_logged"] == str(len(listed))
    for name in ("backtest-result.json", "trades.csv", summary["files"]["freqtrade_zip"]):
        local = client.download_artifacts(run.info.run_id, name, str(tmp_path))
        assert Path(local).read_bytes() == (run_dir / name).read_bytes(), name


def test_failing_backtest_gives_a_failed_mlflow_run(mlflow_server, run_env, tmp_path):
    strategies = tmp_path / "strategies"
    strategies.mkdir()
    (strategies / "BrokenStrategy.py").write_text(BROKEN_STRATEGY)
    env = tracked_env(run_env, mlflow_server.uri, STRATEGY="BrokenStrategy", STRATEGIES_DIR=str(strategies))
    proc = runner(env)
    assert proc.returncode != 0
    item = status_item(env, env["RUN_ID"])
    assert item["status"] == "FAILED"
    assert "strategy bug on purpose" in item["error_message"]

    client = MlflowClient(mlflow_server.uri)
    [run] = runs_tagged(client, env["EXPERIMENT_NAME"], env["RUN_ID"])
    assert item["mlflow_run_id"] == run.info.run_id
    assert run.info.status == "FAILED"
    assert run.data.tags["outcome"] == "FAILED"
    assert run.data.params["timerange"] == "20240901-20240915"
    assert "run.log" in {a.path for a in client.list_artifacts(run.info.run_id)}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_tracking_server_still_completes_the_backtest(run_env):
    env = tracked_env(run_env, f"http://127.0.0.1:{_closed_port()}", MLFLOW_TIMEOUT_SECONDS="10")
    started = time.monotonic()
    proc = runner(env)
    elapsed = time.monotonic() - started
    print(f"\nbacktest with an unreachable MLflow server: {elapsed:.1f} s")
    assert proc.returncode == 0, proc.stderr[-3000:]
    item = status_item(env, env["RUN_ID"])
    assert item["status"] == "COMPLETED"
    assert (Path(env["RUNS_DIR"]) / env["RUN_ID"] / "backtest-result.json").exists()
    assert "mlflow_run_id" not in item
    assert "MLflow start failed" in item["tracking_error"]
    assert "MLflow tracking unavailable" in (Path(env["RUNS_DIR"]) / env["RUN_ID"] / "run.log").read_text()
    assert elapsed < 120, "a down tracking server must not stall the run for minutes"


def test_hung_tracking_server_is_cut_at_the_deadline(run_env):
    """A server that accepts connections and never answers: the step is killed at the deadline."""
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)  # never accept(): connects succeed, requests never get a reply
        port = hung.getsockname()[1]
        env = tracked_env(run_env, f"http://127.0.0.1:{port}", MLFLOW_TIMEOUT_SECONDS="3")
        started = time.monotonic()
        proc = runner(env)
        elapsed = time.monotonic() - started
    print(f"\nbacktest with a hung MLflow server (3 s deadline): {elapsed:.1f} s")
    assert proc.returncode == 0, proc.stderr[-3000:]
    item = status_item(env, env["RUN_ID"])
    assert item["status"] == "COMPLETED"
    assert "passed its 3 s deadline" in item["tracking_error"]
    assert elapsed < 120


def test_same_run_id_twice_is_one_finished_mlflow_run(mlflow_server, run_env, tmp_path):
    """A second attempt with a fresh status store (so it really runs again) reuses the run."""
    env = tracked_env(run_env, mlflow_server.uri)
    first = runner(env)
    assert first.returncode == 0, first.stderr[-3000:]
    env2 = {**env, "RUNS_DIR": str(tmp_path / "runs-second-attempt")}
    second = runner(env2)
    assert second.returncode == 0, second.stderr[-3000:]

    client = MlflowClient(mlflow_server.uri)
    runs = runs_tagged(client, env["EXPERIMENT_NAME"], env["RUN_ID"])
    assert [r.info.status for r in runs] == ["FINISHED"]
    run = runs[0]
    assert run.data.tags["attempt"] == "2"
    assert status_item(env, env["RUN_ID"])["mlflow_run_id"] == run.info.run_id
    assert status_item(env2, env["RUN_ID"])["mlflow_run_id"] == run.info.run_id
    history = client.get_metric_history(run.info.run_id, "profit_total")
    assert sorted(m.step for m in history) == [1, 2]


def test_embedded_sqlite_store_in_the_working_directory(run_env, tmp_path):
    """No MLFLOW_TRACKING_URI: sqlite:///mlflow.db in the CWD, artifacts in ./mlruns beside it.
    The first run creates the store with the library (MLflow's migrations); the next one
    writes it directly (tracking/sqlite.py), and both read back the same way."""
    env = {k: v for k, v in tracked_env(run_env, "").items() if k != "MLFLOW_TRACKING_URI"}
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    second = {**env, "RUN_ID": f"{env['RUN_ID']}-2", "LOG_FORMAT": "json"}
    for item, client_kind in ((env, "library"), (second, "sqlite")):
        proc = runner(item, cwd=workdir)
        assert proc.returncode == 0, proc.stderr[-3000:]
        started = [json.loads(line) for line in (proc.stdout + proc.stderr).splitlines()
                   if '"MLflow run started"' in line]
        if item is second:
            assert [line["client"] for line in started] == [client_kind]
        assert (workdir / "mlflow.db").is_file()
        client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
        [run] = runs_tagged(client, env["EXPERIMENT_NAME"], item["RUN_ID"])
        assert run.info.status == "FINISHED"
        assert run.data.metrics["total_trades"] >= 0 and run.data.params["pairs"] == "BTC/USDT"
        assert run.info.artifact_uri.startswith(str(workdir / "mlruns")) or \
            run.info.artifact_uri.startswith(f"file://{workdir / 'mlruns'}")
        assert "backtest-result.json" in {a.path for a in client.list_artifacts(run.info.run_id)}


def test_interrupted_backtest_gives_a_killed_mlflow_run(mlflow_server, run_env):
    """SIGTERM (Spot interruption) while the worker runs: the MLflow run ends KILLED."""
    env = tracked_env(run_env, mlflow_server.uri, TIMERANGE="20240901-20241201")
    env = {k: v for k, v in env.items() if v != ""}
    proc = subprocess.Popen([sys.executable, "-m", "strategy_runner", "backtest"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    status_file = Path(env["RUNS_DIR"]) / ".status" / f"{env['RUN_ID']}.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if status_file.exists() and "mlflow_run_id" in json.loads(status_file.read_text()):
            break
        time.sleep(0.1)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    print(f"\nSIGTERM -> exit with MLflow finish: {time.monotonic() - signalled:.1f} s")
    item = status_item(env, env["RUN_ID"])
    assert item["error_type"] == "SpotInterrupted", item
    run = MlflowClient(mlflow_server.uri).get_run(item["mlflow_run_id"])
    assert run.info.status == "KILLED"
    assert run.data.tags["outcome"] == "KILLED"


def test_sweep_items_are_children_of_one_finished_parent_run(mlflow_server, run_env, tmp_path):
    """Two items of one sweep started at the same moment: one parent run, both its children."""
    env = tracked_env(run_env, mlflow_server.uri, SWEEP_ID=f"sweep-{uuid.uuid4().hex[:6]}")
    items = [{**env, "RUN_ID": f"{env['SWEEP_ID']}-{n}", "STRATEGY_PARAMETERS": json.dumps({"fast": fast})}
             for n, fast in ((1, 8), (2, 12))]
    procs = [subprocess.Popen([sys.executable, "-m", "strategy_runner", "backtest"], env=item,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for item in items]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()[-2000:]
    client = MlflowClient(mlflow_server.uri)
    exp = client.get_experiment_by_name(env["EXPERIMENT_NAME"]).experiment_id
    parents = client.search_runs([exp], filter_string=f"tags.sweep_id = '{env['SWEEP_ID']}' and tags.sweep_parent = 'true'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    for item, fast in zip(items, (8, 12), strict=True):
        (run,) = runs_tagged(client, env["EXPERIMENT_NAME"], item["RUN_ID"])
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert run.data.tags["parameter.fast"] == str(fast) and run.info.status == "FINISHED"
