"""Data and config from S3 (Supervisor.prepare) against the emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from strategy_runner.artifacts.base import sha256_file
from strategy_runner.engine.data import needed_files
from strategy_runner.errors import ConfigurationError, DataError
from strategy_runner.s3_inputs import fetch_config_overlay, fetch_data, prepare_inputs
from strategy_runner.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"


def upload_data(s3, bucket: str, prefix: str, relpaths: list[str]) -> None:
    for rel in relpaths:
        path = DATA / rel
        s3.upload_file(str(path), bucket, f"{prefix}/{rel}", ExtraArgs={"Metadata": {"sha256": sha256_file(path)}})


@pytest.fixture
def bucket(aws, aws_name):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=aws_name)
    return s3, aws_name


def test_only_the_needed_futures_files_are_fetched_and_verified(bucket, tmp_path):
    s3, name = bucket
    everything = sorted(str(p.relative_to(DATA)) for p in DATA.rglob("*.feather"))
    upload_data(s3, name, "ohlcv/binance", everything)
    files = needed_files(["BTC/USDT:USDT"], "1h", "futures")

    fetch_data(s3, f"s3://{name}/ohlcv/binance", tmp_path / "data", files)

    got = sorted(str(p.relative_to(tmp_path / "data")) for p in (tmp_path / "data").rglob("*") if p.is_file())
    assert got == sorted(f.relpath for f in files) == [
        "futures/BTC_USDT_USDT-1h-funding_rate.feather", "futures/BTC_USDT_USDT-1h-futures.feather",
        "futures/BTC_USDT_USDT-1h-mark.feather"]
    for rel in got:
        assert sha256_file(tmp_path / "data" / rel) == sha256_file(DATA / rel)


def test_every_missing_pair_timeframe_and_candle_type_is_named(bucket, tmp_path):
    s3, name = bucket
    upload_data(s3, name, "d", ["futures/BTC_USDT_USDT-1h-futures.feather"])
    files = needed_files(["BTC/USDT:USDT", "SOL/USDT:USDT"], "1h", "futures")
    with pytest.raises(DataError) as caught:
        fetch_data(s3, f"s3://{name}/d", tmp_path / "data", files)
    message = str(caught.value)
    assert caught.value.error_name == "DataStaleError"
    for missing in ("BTC/USDT:USDT 1h mark", "BTC/USDT:USDT 1h funding_rate", "SOL/USDT:USDT 1h futures",
                    "SOL/USDT:USDT 1h mark", "SOL/USDT:USDT 1h funding_rate"):
        assert missing in message
    assert "BTC/USDT:USDT 1h futures" not in message
    assert f"s3://{name}/d/futures/SOL_USDT_USDT-1h-futures.feather" in message


def test_corrupt_or_unreadable_objects_are_rejected(bucket, tmp_path):
    s3, name = bucket
    rel = "BTC_USDT-1h.feather"
    s3.put_object(Bucket=name, Key=f"bad-sum/{rel}", Body=(DATA / rel).read_bytes(), Metadata={"sha256": "0" * 64})
    s3.put_object(Bucket=name, Key=f"not-feather/{rel}", Body=b"date,open\n")
    files = needed_files(["BTC/USDT"], "1h", "spot")
    with pytest.raises(DataError, match="does not match"):
        fetch_data(s3, f"s3://{name}/bad-sum", tmp_path / "a", files)
    with pytest.raises(DataError, match="not a readable candle file"):
        fetch_data(s3, f"s3://{name}/not-feather", tmp_path / "b", files)
    assert not (tmp_path / "a" / rel).exists() and not (tmp_path / "b" / rel).exists()


def test_config_overlay_is_fetched_or_rejected_clearly(bucket, tmp_path):
    s3, name = bucket
    s3.put_object(Bucket=name, Key="cfg/ok.json", Body=json.dumps({"max_open_trades": 1}))
    s3.put_object(Bucket=name, Key="cfg/bad.json", Body=b"{not json")
    dest = tmp_path / "overlay.json"
    assert fetch_config_overlay(s3, f"s3://{name}/cfg/ok.json", dest) == {"max_open_trades": 1}
    assert json.loads(dest.read_text()) == {"max_open_trades": 1}
    with pytest.raises(ConfigurationError, match="CONFIG_S3_PATH=.*bad.json.*not valid JSON"):
        fetch_config_overlay(s3, f"s3://{name}/cfg/bad.json", dest)
    with pytest.raises(ConfigurationError, match="no such object"):
        fetch_config_overlay(s3, f"s3://{name}/cfg/missing.json", dest)


def test_prepare_uses_the_overlay_whitelist_and_trading_mode(bucket, tmp_path):
    """No PAIRS: the pairs come from the overlay's whitelist; spot files for a spot config."""
    s3, name = bucket
    upload_data(s3, name, "d", ["ETH_USDT-1h.feather", "SOL_USDT-1h.feather"])
    s3.put_object(Bucket=name, Key="cfg/o.json",
                  Body=json.dumps({"exchange": {"pair_whitelist": ["ETH/USDT", "SOL/USDT"]}}))
    settings = load_settings(RUN_ID="prep-1", TIMEFRAME="1h", RUNS_DIR=str(tmp_path / "runs"),
                             DATA_DIR=str(tmp_path / "data"), CONFIGS_DIR=str(ROOT / "configs"),
                             CONFIG_S3_PATH=f"s3://{name}/cfg/o.json", DATA_S3_PATH=f"s3://{name}/d")
    prepare_inputs(settings, s3)
    assert (tmp_path / "runs" / "prep-1" / ".worker" / "config-overlay.json").exists()
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["ETH_USDT-1h.feather", "SOL_USDT-1h.feather"]


def test_an_informative_strategy_gets_its_informative_data_from_s3_too(aws, bucket, tmp_path, run_env):
    """The supervisor can only foresee the main files; the worker names the informative ones once
    the strategy is loaded, the supervisor fetches them and starts it again."""
    import shutil

    from ..conftest import runner
    from ..test_data_integrity import FIXTURES, candles_15m

    s3, name = bucket
    upload_data(s3, name, "ohlcv", ["ETH_USDT-5m.feather"])
    candles_15m(DATA / "BTC_USDT-5m.feather", tmp_path / "BTC_USDT-15m.feather")
    s3.upload_file(str(tmp_path / "BTC_USDT-15m.feather"), name, "ohlcv/BTC_USDT-15m.feather")
    strategies = tmp_path / "strategies"
    strategies.mkdir()
    shutil.copy(FIXTURES / "InformativeBtc15m.py", strategies)
    env = {**run_env, **aws.env, "RUN_ID": "s3-informative", "STRATEGY": "InformativeBtc15m", "PAIRS": "ETH/USDT",
           "TIMERANGE": "20241001-20241015", "TRACKING": "false", "STRATEGIES_DIR": str(strategies),
           "DATA_DIR": str(tmp_path / "data"), "DATA_S3_PATH": f"s3://{name}/ohlcv"}
    done = runner(env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "data" / "BTC_USDT-15m.feather").is_file()
    summary = json.loads((Path(env["RUNS_DIR"]) / "s3-informative" / "backtest-result.json").read_text())
    assert {f["file"] for f in summary["data_quality"]["files"]} == {"ETH_USDT-5m.feather", "BTC_USDT-15m.feather"}
    assert "fetching what the strategy reads besides its main candles" in (
        Path(env["RUNS_DIR"]) / "s3-informative" / "run.log").read_text()
    # Not under DATA_S3_PATH either: the named data error, as without S3.
    s3.delete_object(Bucket=name, Key="ohlcv/BTC_USDT-15m.feather")
    missing = runner({**env, "RUN_ID": "s3-informative-missing", "DATA_DIR": str(tmp_path / "data2")})
    assert missing.returncode == 3 and "BTC/USDT 15m" in missing.stderr, missing.stderr[-2000:]
