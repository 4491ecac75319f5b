"""A user's own inputs, on real backtests: pairs no bundled snapshot has (MARKETS=infer, or a
snapshot beside the data), another exchange, a CSV imported with import-data, Freqtrade's own
example config used by path, data in another of Freqtrade's formats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from strategy_runner.markets.infer import infer_market
from strategy_runner.sample_data import SamplePair, candles

from .conftest import ROOT, runner

RANGE = "20240301-20240315"


def summary(env: dict[str, str], run_id: str) -> dict:
    return json.loads((Path(env["RUNS_DIR"]) / run_id / "backtest-result.json").read_text())


def user_config(tmp_path: Path, **changes) -> Path:
    """The bundled base config, copied out of CONFIGS_DIR and changed as a user would."""
    config = json.loads((ROOT / "configs" / "base.json").read_text())
    exchange = changes.pop("exchange", {})
    config.update(changes)
    config["exchange"].update(exchange)
    path = tmp_path / "my-config.json"
    path.write_text(json.dumps(config, indent=2))
    return path


@pytest.fixture
def eth_btc_data(tmp_path: Path) -> Path:
    """Real-looking ETH/BTC 5m candles (BTC-quoted: no bundled market) in a user's data folder."""
    data = tmp_path / "data"
    data.mkdir()
    frame = candles(SamplePair("ETH/BTC", 0.0521, 0.00001, 0.0001), start="2024-02-20", end="2024-03-16")
    frame.reset_index(drop=True).to_feather(data / "ETH_BTC-5m.feather", compression="lz4")
    return data


def btc_quoted(tmp_path: Path, run_env: dict, data: Path, **extra: str) -> dict[str, str]:
    config = user_config(tmp_path, stake_currency="BTC", stake_amount=0.01, dry_run_wallet=0.1,
                         exchange={"pair_whitelist": ["ETH/BTC"]})
    return {**run_env, "DATA_DIR": str(data), "CONFIG": str(config), "PAIRS": "ETH/BTC", "TIMERANGE": RANGE,
            "TRACKING": "false", **extra}


def test_a_pair_no_snapshot_has_fails_naming_it_and_every_place_looked(tmp_path, run_env, eth_btc_data) -> None:
    done = runner({**btc_quoted(tmp_path, run_env, eth_btc_data), "RUN_ID": "unknown-pair"})
    assert done.returncode == 2, done.stderr[-2000:]
    item = json.loads((Path(run_env["RUNS_DIR"]) / ".status" / "unknown-pair.json").read_text())
    message = item["error_message"]
    assert item["error_type"] == "ValidationError" and message.startswith("ETH/BTC: not a market of binance")
    assert str(eth_btc_data / "markets" / "binance.json") in message and "configs/markets/binance.json" in message
    assert "MARKETS=infer" in message


def test_markets_infer_runs_a_btc_quoted_pair_and_says_so(tmp_path, run_env, eth_btc_data) -> None:
    env = {**btc_quoted(tmp_path, run_env, eth_btc_data, MARKETS="infer"), "RUN_ID": "inferred"}
    done = runner(env)
    assert done.returncode == 0, done.stderr[-3000:]
    markets = summary(env, "inferred")["markets"]
    assert markets["inferred_pairs"] == ["ETH/BTC"] and markets["source"].endswith("configs/markets/binance.json")
    assert summary(env, "inferred")["metrics"]["total_trades"] > 0
    assert summary(env, "inferred")["data_provenance"] == {"kind": "user", "synthetic_files": []}
    report = (Path(env["RUNS_DIR"]) / "inferred" / "report.html").read_text()
    assert "inferred_markets" in report and "candles: <b>your data" in report


def test_a_snapshot_beside_the_data_is_used_first(tmp_path, run_env, eth_btc_data) -> None:
    frame = pd.read_feather(eth_btc_data / "ETH_BTC-5m.feather")
    snapshot = {"exchange": "binance", "markets": {"ETH/BTC": {**infer_market("ETH/BTC", frame), "info": {}}}}
    (eth_btc_data / "markets").mkdir()
    (eth_btc_data / "markets" / "binance.json").write_text(json.dumps(snapshot))
    env = {**btc_quoted(tmp_path, run_env, eth_btc_data), "RUN_ID": "beside"}
    done = runner(env)
    assert done.returncode == 0, done.stderr[-3000:]
    markets = summary(env, "beside")["markets"]
    assert (markets["source"], markets["inferred_pairs"]) == (str(eth_btc_data / "markets" / "binance.json"), [])
    assert len(markets["sha256"]) == 64


def eur_usd_csv(path: Path) -> Path:
    """Two months of hourly EUR/USD candles, as a broker's CSV export looks."""
    rng = np.random.default_rng(7)
    dates = pd.date_range("2024-01-15", "2024-03-16", freq="1h", tz="UTC")
    close = 1.09 * np.exp(np.cumsum(rng.normal(0, 0.0012, len(dates))))
    open_ = np.concatenate([[1.09], close[:-1]])
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.0004, len(dates))))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.0004, len(dates))))
    pd.DataFrame({"Date": dates.strftime("%Y-%m-%d %H:%M:%S"), "Open": open_.round(5), "High": high.round(5),
                  "Low": low.round(5), "Close": close.round(5), "Volume": rng.integers(1000, 5000, len(dates))}
                 ).to_csv(path, index=False)
    return path


def test_a_kraken_csv_imported_and_backtested_with_inferred_markets(tmp_path, run_env) -> None:
    data = tmp_path / "data"
    imported = runner({**run_env}, "import-data", str(eur_usd_csv(tmp_path / "EURUSD.csv")), "--pair", "EUR/USD",
                      "--timeframe", "1h", "--data-dir", str(data))
    assert imported.returncode == 0, imported.stderr[-2000:]
    assert (data / "EUR_USD-1h.feather").is_file()
    config = user_config(tmp_path, stake_currency="USD", stake_amount=100, dry_run_wallet=1000,
                         exchange={"name": "kraken", "pair_whitelist": ["EUR/USD"]})
    env = {**run_env, "DATA_DIR": str(data), "CONFIG": str(config), "PAIRS": "EUR/USD", "TIMEFRAME": "1h",
           "TIMERANGE": RANGE, "MARKETS": "infer", "TRACKING": "false", "RUN_ID": "kraken"}
    done = runner(env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = summary(env, "kraken")
    assert result["markets"]["exchange"] == "kraken" and result["markets"]["source"] == "inferred"
    assert result["markets"]["inferred_pairs"] == ["EUR/USD"] and result["timeframe"] == "1h"
    # A Binance snapshot copied for kraken is refused, not used with Binance's fees.
    (data / "markets").mkdir()
    (data / "markets" / "kraken.json").write_text((ROOT / "configs" / "markets" / "binance.json").read_text())
    refused = runner({**env, "RUN_ID": "kraken-copied"})
    assert refused.returncode == 2 and "is for 'binance' but the config's exchange is 'kraken'" in refused.stderr


def freqtrades_example_config(tmp_path: Path) -> Path:
    """Freqtrade's config_examples/config_binance.example.json, as a user copies it."""
    config = {
        "$schema": "https://schema.freqtrade.io/schema.json", "max_open_trades": 3, "stake_currency": "USDT",
        "stake_amount": 30, "tradable_balance_ratio": 0.99, "fiat_display_currency": "USD", "timeframe": "5m",
        "dry_run": True, "cancel_open_orders_on_exit": False,
        "unfilledtimeout": {"entry": 10, "exit": 10, "exit_timeout_count": 0, "unit": "minutes"},
        "entry_pricing": {"price_side": "same", "use_order_book": True, "order_book_top": 1, "price_last_balance": 0.0,
                          "check_depth_of_market": {"enabled": False, "bids_to_ask_delta": 1}},
        "exit_pricing": {"price_side": "same", "use_order_book": True, "order_book_top": 1},
        "exchange": {"name": "binance", "api_key": "your_exchange_api_key", "secret": "your_exchange_secret",
                     "ccxt_config": {}, "ccxt_async_config": {},
                     "pair_whitelist": ["ALGO/USDT", "ATOM/USDT", "BAT/USDT", "ETH/USDT", "XRP/USDT"],
                     "pair_blacklist": ["BNB/.*"]},
        "pairlists": [{"method": "StaticPairList"}],
        "telegram": {"enabled": False, "token": "your_telegram_token", "chat_id": "your_telegram_chat_id"},
        "api_server": {"enabled": False, "listen_ip_address": "127.0.0.1", "listen_port": 8080, "verbosity": "error",
                       "jwt_secret_key": "somethingRandomSomethingRandom123", "CORS_origins": [],
                       "username": "freqtrader", "password": "SuperSecurePassword"},
        "bot_name": "freqtrade", "initial_state": "running", "force_entry_enable": False,
        "internals": {"process_throttle_secs": 5},
    }
    path = tmp_path / "config_binance.example.json"
    path.write_text(json.dumps(config, indent=4))
    return path


def test_freqtrades_example_config_runs_by_path(tmp_path, run_env) -> None:
    config = freqtrades_example_config(tmp_path)
    env = {**run_env, "CONFIG": str(config), "PAIRS": "BTC/USDT,ETH/USDT", "TIMERANGE": RANGE, "TRACKING": "false",
           "RUN_ID": "example-config"}
    done = runner(env)
    assert done.returncode == 0, done.stderr[-3000:]
    log = (Path(env["RUNS_DIR"]) / "example-config" / "run.log").read_text()
    ignored = [json.loads(line) for line in log.splitlines() if "a backtest does not use are ignored" in line]
    assert len(ignored) == 1
    assert {"api_server", "telegram", "exchange.api_key", "exchange.secret"} <= set(ignored[0]["ignored"])
    assert "SuperSecurePassword" not in log and "your_exchange_secret" not in log
    # PAIRS unset: the config's own whitelist is honoured, and its pairs without data are named.
    honoured = runner({**env, "PAIRS": "", "RUN_ID": "example-pairs"})
    assert honoured.returncode in (2, 3) and "ALGO/USDT" in honoured.stderr


@pytest.mark.parametrize(("data_format", "suffix"), [("jsongz", ".json.gz"), ("json", ".json"), ("parquet", ".parquet")])
def test_every_freqtrade_data_format_gives_the_same_trades_as_feather(tmp_path, run_env, data_format, suffix) -> None:
    from freqtrade.data.history import get_datahandler
    from freqtrade.enums import CandleType

    data = tmp_path / "data"
    frame = pd.read_feather(ROOT / "data" / "BTC_USDT-5m.feather")
    get_datahandler(data, data_format).ohlcv_store("BTC/USDT", "5m", frame, CandleType.SPOT)
    assert (data / f"BTC_USDT-5m{suffix}").is_file()
    as_json = user_config(tmp_path, dataformat_ohlcv=data_format)
    common = {**run_env, "PAIRS": "BTC/USDT", "TIMERANGE": RANGE, "TRACKING": "false", "RESULT_CACHE": "false"}
    feather_env = {**common, "RUN_ID": "as-feather"}
    json_env = {**common, "RUN_ID": "as-jsongz", "DATA_DIR": str(data), "CONFIG": str(as_json)}
    for env in (feather_env, json_env):
        done = runner(env)
        assert done.returncode == 0, done.stderr[-3000:]
    trades = [(Path(env["RUNS_DIR"]) / env["RUN_ID"] / "trades.csv").read_text() for env in (feather_env, json_env)]
    assert trades[0] == trades[1] and trades[0].count("\n") > 5
    assert summary(feather_env, "as-feather")["data_provenance"]["kind"] == "synthetic"  # the bundled sample
    files = summary(json_env, "as-jsongz")["data_quality"]["files"]
    assert [f["file"] for f in files] == [f"BTC_USDT-5m{suffix}"]


def test_status_and_mlflow_tags_say_when_markets_were_inferred_and_candles_synthetic(tmp_path) -> None:
    from strategy_runner.lifecycle import Status
    from strategy_runner.operator.view import render, run_view
    from strategy_runner.settings import load_settings
    from strategy_runner.status.local import LocalStatusStore
    from strategy_runner.tracking.mlflow import run_tags
    from strategy_runner.worker import result_notes

    summary = {"timeframe": "1h", "timeframe_source": "TIMEFRAME", "data_provenance": {"kind": "synthetic"},
               "markets": {"source": "inferred", "inferred_pairs": ["EUR/USD"]}}
    notes = result_notes(summary)
    assert (notes["candles"], notes["markets"], notes["inferred_markets"]) == ("synthetic", "inferred", ["EUR/USD"])
    settings = load_settings(runs_dir=tmp_path / "runs")
    tags = run_tags(settings, summary, "FINISHED")
    assert tags["candles"] == "synthetic" and tags["markets_inferred"] == "EUR/USD"
    store = LocalStatusStore(settings.runs_dir)
    store.claim("r-notes", owner="me", lease_seconds=600, fields={"strategy": "S", "pairs": ["EUR/USD"]})
    store.finish("r-notes", Status.COMPLETED, owner="me", fields={"result_notes": notes})
    shown = render(run_view(settings, store, "r-notes", with_mlflow=False))
    assert "synthetic sample data, not a market's history" in shown
    assert "inferred     EUR/USD (MARKETS=infer" in shown and "markets      inferred" in shown
