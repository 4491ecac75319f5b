"""The result cache: an identical second run reuses the first's result (log, status item,
summary), and any change to data, strategy or config gives another key."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from strategy_runner.artifacts.base import SUMMARY
from strategy_runner.cache.hook import CacheHook
from strategy_runner.cache.key import NotCacheable, cache_key, file_set_key, identity_mismatch, run_inputs
from strategy_runner.cache.local import LocalResultCache
from strategy_runner.settings import load_settings

from .conftest import ROOT, runner

CASE = {"STRATEGY": "EmaCrossSpot", "PAIRS": "BTC/USDT", "TIMERANGE": "20241001-20241008"}


def _status(runs: Path, run_id: str) -> dict:
    return json.loads((runs / ".status" / f"{run_id}.json").read_text())


def _events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "run.log").read_text().splitlines() if line.startswith("{")]


def test_an_identical_run_reuses_the_completed_result(run_env, tmp_path):
    env = {**run_env, **CASE, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    runs = Path(env["RUNS_DIR"])
    first = runner({**env, "RUN_ID": "cache-a"}, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    a = _status(runs, "cache-a")
    assert a["status"] == "COMPLETED" and a["cache_hit"] is False
    key = a["cache_key"]
    assert (runs / ".cache" / key / "cache-entry.json").is_file()
    # The key is computed from the same inputs the worker records as the run's identity.
    summary_a = json.loads((runs / "cache-a" / SUMMARY).read_text())
    settings = load_settings(**{k: v for k, v in env.items() if v}, RUN_ID="cache-a")
    inputs = run_inputs(settings, data_files=sorted(summary_a["identity"]["data_files"]))
    assert cache_key(inputs) == key and identity_mismatch(inputs, summary_a["identity"]) == []
    # The files it read are remembered under the inputs without data (an entry with no files).
    file_set = json.loads((runs / ".cache" / file_set_key(inputs) / "cache-entry.json").read_text())
    assert file_set["data_files"] == ["BTC_USDT-5m.feather"] and file_set["files"] == {}

    second = runner({**env, "RUN_ID": "cache-b"}, cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    b = _status(runs, "cache-b")
    assert (b["status"], b["cache_hit"], b["cache_key"], b["cache_source_run_id"]) == ("COMPLETED", True, key, "cache-a")
    reused = [e for e in _events(runs / "cache-b") if e["event"].startswith("result reused from the cache")]
    assert reused and reused[0]["source_run_id"] == "cache-a"
    assert not any(e.get("process") == "worker" for e in _events(runs / "cache-b")), "the worker ran on a hit"
    summary_b = json.loads((runs / "cache-b" / SUMMARY).read_text())
    assert summary_b["run_id"] == "cache-b" and summary_b["cache"] == {"hit": True, "key": key, "source_run_id": "cache-a"}
    assert summary_b["metrics"] == summary_a["metrics"] and summary_b["identity"] == summary_a["identity"]
    assert (runs / "cache-b" / "trades.csv").read_bytes() == (runs / "cache-a" / "trades.csv").read_bytes()
    assert "cache-b" in (runs / "cache-b" / "report.html").read_text()
    manifest = json.loads((runs / "cache-b" / "manifest.json").read_text())
    assert {"backtest-result.json", "trades.csv", "report.html", "run.log"} <= set(manifest["files"])

    # RESULT_CACHE=false recomputing: test_regression's --no-cache rerun (and the unit test below).


def _settings(tmp_path: Path, **env: str):
    values = {"RUNS_DIR": str(tmp_path / "runs"), "DATA_DIR": str(ROOT / "data"),
              "STRATEGIES_DIR": str(ROOT / "strategies"), "CONFIGS_DIR": str(ROOT / "configs"), **CASE, **env}
    return load_settings(**values)


def test_the_key_changes_with_data_strategy_config_and_range(tmp_path):
    files = ["BTC_USDT-5m.feather"]

    def key_of(**env: str) -> str:
        return cache_key(run_inputs(_settings(tmp_path, **env), data_files=files))

    key = key_of()
    assert key == key_of()
    with pytest.raises(NotCacheable, match="not known yet"):
        cache_key(run_inputs(_settings(tmp_path)))  # which files it reads: not before a first run

    data = tmp_path / "data"
    shutil.copytree(ROOT / "data", data)
    assert key_of(DATA_DIR=str(data)) == key  # same bytes elsewhere
    with open(data / "BTC_USDT-5m.feather", "ab") as fh:
        fh.write(b"\0")
    changed = run_inputs(_settings(tmp_path, DATA_DIR=str(data)), data_files=files)
    assert cache_key(changed) != key and list(changed["data_files"]) == ["BTC_USDT-5m.feather"]
    (data / "BTC_USDT-5m.feather").unlink()
    assert run_inputs(_settings(tmp_path, DATA_DIR=str(data)), data_files=files)["data_files"] == {
        "BTC_USDT-5m.feather": "missing"}

    strategies = tmp_path / "strategies"
    shutil.copytree(ROOT / "strategies", strategies, ignore=shutil.ignore_patterns("__pycache__"))
    src = strategies / "EmaCrossSpot.py"
    src.write_text(src.read_text().replace("stoploss = -0.03", "stoploss = -0.05"))
    assert key_of(STRATEGIES_DIR=str(strategies)) != key
    assert key_of(TIMERANGE="20241001-20241009") != key
    assert key_of(PAIRS="BTC/USDT,ETH/USDT") != key
    for setting in ({"TIMEFRAME": "5m"}, {"ENABLE_PROTECTIONS": "true"}, {"ALLOW_MISSING_INFORMATIVE": "true"},
                    {"FAST_PRECISION": "false"}):
        assert key_of(**setting) != key, setting


def test_a_damaged_entry_is_a_miss_and_the_cache_can_be_turned_off(tmp_path):
    run_dir = tmp_path / "runs" / "r1"
    run_dir.mkdir(parents=True)
    (run_dir / SUMMARY).write_text("{}")
    (run_dir / "trades.csv").write_text("pair\n")
    (run_dir / "run.log").write_text("not cached\n")
    cache = LocalResultCache(tmp_path / "runs")
    cache.store("k1", run_dir, {"source_run_id": "r1"})
    assert sorted(json.loads((tmp_path / "runs/.cache/k1/cache-entry.json").read_text())["files"]) == [
        SUMMARY, "trades.csv"]
    assert cache.fetch("k1", tmp_path / "out1")["source_run_id"] == "r1"
    (tmp_path / "runs/.cache/k1/trades.csv").write_text("tampered\n")
    assert cache.fetch("k1", tmp_path / "out2") is None
    assert not (tmp_path / "out2" / "trades.csv").exists()

    hook = CacheHook(_settings(tmp_path, RESULT_CACHE="false", RUN_ID="off"))
    assert hook.reuse() is False and hook.fields == {}


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_result_cache_setting_is_validated(value, tmp_path):
    from strategy_runner.errors import ValidationError

    with pytest.raises(ValidationError, match="RESULT_CACHE"):
        _settings(tmp_path, RESULT_CACHE=value)


def test_the_s3_cache_shares_results_between_machines(aws, aws_name, run_env, tmp_path):
    """Two runs with separate RUNS_DIRs (two machines) and one RESULTS_BUCKET: the second
    finds the first's result under s3://bucket/result-cache/<key>/."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=aws_name)
    env = {**run_env, **aws.env, **CASE, "RESULTS_BUCKET": aws_name,
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    first = runner({**env, "RUN_ID": "s3-a", "RUNS_DIR": str(tmp_path / "machine-a")}, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    key = _status(tmp_path / "machine-a", "s3-a")["cache_key"]
    names = {o["Key"] for o in s3.list_objects_v2(Bucket=aws_name, Prefix=f"result-cache/{key}/")["Contents"]}
    assert f"result-cache/{key}/cache-entry.json" in names and f"result-cache/{key}/trades.csv" in names

    second = runner({**env, "RUN_ID": "s3-b", "RUNS_DIR": str(tmp_path / "machine-b")}, cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    b = _status(tmp_path / "machine-b", "s3-b")
    assert (b["cache_hit"], b["cache_source_run_id"]) == (True, "s3-a")
    assert (tmp_path / "machine-b" / ".cache" / key / "cache-entry.json").is_file()  # kept locally too
    assert not list((tmp_path / "machine-b" / "s3-b").glob(".cache-fetch-*"))
    summary = json.loads((tmp_path / "machine-b" / "s3-b" / SUMMARY).read_text())
    assert summary["cache"]["hit"] is True and summary["run_id"] == "s3-b"


def test_a_tampered_s3_entry_is_a_miss(aws, aws_name, tmp_path):
    from strategy_runner.cache.s3 import S3ResultCache

    s3 = aws.client("s3")
    s3.create_bucket(Bucket=aws_name)
    run_dir = tmp_path / "r1"
    run_dir.mkdir()
    (run_dir / SUMMARY).write_text('{"metrics": {}}')
    (run_dir / "trades.csv").write_text("pair\n")
    cache = S3ResultCache(s3, aws_name)
    cache.store("k1", run_dir, {"source_run_id": "r1"})
    assert cache.fetch("k1", tmp_path / "ok")["source_run_id"] == "r1"
    assert (tmp_path / "ok" / "trades.csv").read_text() == "pair\n"
    assert cache.fetch("nope", tmp_path / "none") is None
    s3.put_object(Bucket=aws_name, Key="result-cache/k1/trades.csv", Body=b"tampered\n")
    assert cache.fetch("k1", tmp_path / "bad") is None
    assert not (tmp_path / "bad" / "trades.csv").exists() and not list((tmp_path / "bad").glob(".cache-fetch-*"))
