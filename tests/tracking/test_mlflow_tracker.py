"""MlflowTracker without a backtest: retries, the experiment race, what gets logged, and
that the supervisor never imports mlflow."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from pathlib import Path
from types import SimpleNamespace

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS
from mlflow.tracking import MlflowClient

from strategy_runner.settings import load_settings, mlflow_client_environment
from strategy_runner.tracking.mlflow import MlflowTracker, experiment_id, run_metrics, run_params, tracking_uri


def settings_for(run_id: str, experiment: str, **extra):
    return load_settings(RUN_ID=run_id, EXPERIMENT_NAME=experiment, TIMERANGE="20240901-20240915",
                         PAIRS="BTC/USDT", **extra)


SUMMARY = {
    "metrics": {"profit_total": 0.01, "total_trades": 3.0, "sharpe": None},
    "per_pair": [{"pair": "BTC/USDT:USDT", "profit_total": 0.01, "trades": 3.0}],
    "durations": {"backtest_s": 1.5},
    "stake": {"stake_amount": 100, "max_open_trades": 3},
    "strategy_params": {"buy": {"fast": 12}},
    "supervisor": {"peak_memory_mb": 300.0, "upload_s": 0.2},
}


def test_interrupted_attempt_then_retry_is_one_finished_run(mlflow_server, tmp_path):
    settings = settings_for(f"t-{uuid.uuid4().hex[:8]}", f"exp-{uuid.uuid4().hex[:8]}")
    first = MlflowTracker(settings, mlflow_server.uri)
    run_id = first.start()
    assert run_id
    assert first.finish("KILLED", None, tmp_path) is None

    client = MlflowClient(mlflow_server.uri)
    assert client.get_run(run_id).info.status == "KILLED"
    second = MlflowTracker(settings, mlflow_server.uri)
    assert second.start() == run_id  # the same MLflow run, reopened
    assert client.get_run(run_id).info.status == "RUNNING"
    assert second.finish("FINISHED", SUMMARY, tmp_path) is None

    exp = client.get_experiment_by_name(settings.experiment_name)
    runs = client.search_runs([exp.experiment_id], f"tags.run_id = '{settings.run_id}'")
    assert [(r.info.run_id, r.info.status) for r in runs] == [(run_id, "FINISHED")]
    assert runs[0].data.tags["attempt"] == "2"
    assert runs[0].data.metrics["peak_memory_mb"] == 300.0


def test_a_retry_with_changed_params_keeps_the_first_and_says_so(mlflow_server, tmp_path):
    run, experiment = f"t-{uuid.uuid4().hex[:8]}", f"exp-{uuid.uuid4().hex[:8]}"
    first = MlflowTracker(settings_for(run, experiment, TIMEFRAME="5m"), mlflow_server.uri)
    first.start()
    assert first.finish("FAILED", None, tmp_path) is None
    changed = MlflowTracker(settings_for(run, experiment, TIMEFRAME="1h"), mlflow_server.uri)
    changed.start()
    assert changed.finish("FINISHED", None, tmp_path) is None
    data = MlflowClient(mlflow_server.uri).get_run(first.mlflow_run_id).data
    assert data.params["timeframe"] == "5m"
    assert data.tags["params_conflict"] == "timeframe"


def test_experiment_created_once_when_runs_race(mlflow_server):
    name = f"race-{uuid.uuid4().hex[:8]}"
    client = MlflowClient(mlflow_server.uri)
    ids: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def create() -> None:
        barrier.wait()
        try:
            ids.append(experiment_id(client, name))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(ids) == 4 and len(set(ids)) == 1


def test_lost_creation_race_rereads_the_experiment():
    """The branch the race takes, made deterministic: another run created it in between."""
    created = SimpleNamespace(experiment_id="7", lifecycle_stage="active")
    answers = iter([None, created])

    class Racing:
        def get_experiment_by_name(self, name):
            return next(answers)

        def create_experiment(self, name):
            raise MlflowException("exists", error_code=RESOURCE_ALREADY_EXISTS)

    assert experiment_id(Racing(), "x") == "7"


def test_what_gets_logged():
    settings = settings_for("t-1", "e")
    metrics = run_metrics(SUMMARY)
    assert metrics["profit_total"] == 0.01
    assert "sharpe" not in metrics  # None is not a metric
    assert metrics["pair.BTC_USDT_USDT.profit_total"] == 0.01
    assert metrics["duration.backtest_s"] == 1.5
    assert metrics["duration.upload_s"] == 0.2
    assert metrics["peak_memory_mb"] == 300.0
    params = run_params(settings, SUMMARY)
    assert params["strategy.buy.fast"] == "12"
    assert params["stake_amount"] == "100"
    assert params["pairs"] == "BTC/USDT"


def test_default_tracking_uri_is_sqlite_in_the_working_directory(tmp_path):
    assert tracking_uri(load_settings(), cwd=tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert tracking_uri(load_settings(MLFLOW_TRACKING_URI="http://mlflow:5000")) == "http://mlflow:5000"


def test_client_retries_are_bounded_by_the_deadline():
    env = mlflow_client_environment(load_settings(MLFLOW_TIMEOUT_SECONDS=6))
    assert env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "1"
    assert env["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "3"


def test_tracker_failure_is_a_message_not_an_exception(tmp_path):
    tracker = MlflowTracker(settings_for("t-2", "e", MLFLOW_TIMEOUT_SECONDS=20), "http://127.0.0.1:9")
    assert tracker.start() is None
    message = tracker.finish("FINISHED", SUMMARY, tmp_path)
    assert message.startswith("MLflow run not recorded: MLflow start failed")


def test_supervisor_never_imports_mlflow_nor_boto3_without_aws(tmp_path):
    code = (
        "import sys\n"
        "from strategy_runner import runner, adapters\n"
        "from strategy_runner.settings import load_settings\n"
        "adapters.build(load_settings())\n"
        "assert not [m for m in sys.modules if m == 'mlflow' or m.startswith('mlflow.')], 'mlflow imported'\n"
        # Nor what a run without AWS does not need (measured: ~20 MiB each in the supervisor).
        "from strategy_runner import s3_inputs\n"
        "from strategy_runner.engine.data import needed_files\n"
        "from strategy_runner.tracking import sqlite\n"
        "needed_files(['BTC/USDT'], '5m', 'spot')\n"
        "assert 'boto3' not in sys.modules and 'numpy' not in sys.modules, 'boto3 or numpy imported'\n"
        "assert 'rich' not in sys.modules, 'rich imported (by structlog: ~70 ms before RUNNING)'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert not Path(tmp_path / "mlflow.db").exists()  # building the tracker touches nothing
