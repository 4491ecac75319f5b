"""Issue 12, what a result says it was computed from: the strategy's own timeframe, helper
modules in the key, Freqtrade's result-changing warnings counted (a callback raising every
candle stays cheap), protections recorded, and errors that keep Freqtrade's detail.

Real backtests through the runner on the bundled candles; plain Freqtrade for comparison
(tests/test_data_integrity.plain_freqtrade).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from strategy_runner.cache.key import cache_key, file_set_key, run_inputs
from strategy_runner.engine.config import strategy_sources
from strategy_runner.settings import load_settings

from .conftest import ROOT
from .test_data_integrity import assert_same_result, plain_freqtrade, run, status, strategies


# --- 3: the strategy's own timeframe ------------------------------------------------------

def test_a_1h_strategy_without_timeframe_runs_at_1h_like_plain_freqtrade(run_env, tmp_path):
    strategy_dir = strategies(tmp_path, "HourlySar.py")
    env = {**run_env, "STRATEGIES_DIR": str(strategy_dir), "STRATEGY": "HourlySar", "PAIRS": "BTC/USDT"}
    proc, own = run(env, "sar-own", TIMERANGE="20240901-20241201")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (own["timeframe"], own["timeframe_source"]) == ("1h", "strategy")
    assert [f["file"] for f in own["data_quality"]["files"]] == ["BTC_USDT-1h.feather"]
    assert_same_result(own, plain_freqtrade(tmp_path, "HourlySar", strategy_dir, ROOT / "data", ["BTC/USDT"],
                                            "20240901-20241201"))

    proc, forced = run(env, "sar-5m", TIMERANGE="20240901-20241201", TIMEFRAME="5m")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (forced["timeframe"], forced["timeframe_source"]) == ("5m", "TIMEFRAME")
    assert forced["metrics"]["total_trades"] != own["metrics"]["total_trades"]


# --- 1: helper modules in the key --------------------------------------------------------

def test_a_changed_helper_module_changes_the_key(tmp_path):
    strategy_dir = strategies(tmp_path, "HelperSignals.py", "sr_signals.py")
    assert [p.name for p in strategy_sources(strategy_dir / "HelperSignals.py", strategy_dir)] == [
        "HelperSignals.py", "sr_signals.py"]
    settings = load_settings(RUNS_DIR=str(tmp_path / "runs"), DATA_DIR=str(ROOT / "data"),
                             STRATEGIES_DIR=str(strategy_dir), CONFIGS_DIR=str(ROOT / "configs"),
                             STRATEGY="HelperSignals", PAIRS="BTC/USDT", TIMERANGE="20241001-20241015")
    before = run_inputs(settings, data_files=["BTC_USDT-5m.feather"])
    helper = strategy_dir / "sr_signals.py"
    helper.write_text(helper.read_text().replace("SLOW = 48", "SLOW = 50"))
    after = run_inputs(settings, data_files=["BTC_USDT-5m.feather"])
    assert after["strategy_hash"] != before["strategy_hash"]
    assert cache_key(after) != cache_key(before) and file_set_key(after) != file_set_key(before)


def test_a_changed_helper_module_misses_the_cache_in_a_real_run(run_env, tmp_path):
    strategy_dir = strategies(tmp_path, "HelperSignals.py", "sr_signals.py")
    env = {**run_env, "STRATEGIES_DIR": str(strategy_dir), "STRATEGY": "HelperSignals", "PAIRS": "BTC/USDT"}
    proc, first = run(env, "helper-a")
    assert proc.returncode == 0, proc.stderr[-3000:]
    helper = strategy_dir / "sr_signals.py"
    helper.write_text(helper.read_text().replace("SLOW = 48", "SLOW = 30"))
    proc, second = run(env, "helper-b")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert status(env, "helper-b")["cache_hit"] is False
    assert second["identity"]["strategy_hash"] != first["identity"]["strategy_hash"]
    assert second["metrics"] != first["metrics"]


# --- 7: warnings that change results -----------------------------------------------------

def test_a_callback_raising_every_candle_is_counted_and_stays_cheap(run_env, tmp_path):
    strategy_dir = strategies(tmp_path, "RaisingCallback.py")
    env = {**run_env, "STRATEGIES_DIR": str(strategy_dir), "STRATEGY": "RaisingCallback", "PAIRS": "BTC/USDT"}
    timerange = "20240901-20241101"
    started = time.monotonic()
    proc, summary = run(env, "raising", TIMERANGE=timerange)
    ours = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    errors = summary["warnings"]["strategy_callback_error:bot_loop_start"]
    candles = 61 * 288
    assert candles - 10 <= errors["count"] <= candles + 10 and "KeyError" in errors["first"]
    lines = (Path(env["RUNS_DIR"]) / "raising" / "run.log").read_text().splitlines()
    logged = [json.loads(line) for line in lines if "strategy_wrapper" in line]
    assert 1 <= len(logged) <= 10 and sum("exception" in e for e in logged) == 1
    started = time.monotonic()
    plain = plain_freqtrade(tmp_path, "RaisingCallback", strategy_dir, ROOT / "data", ["BTC/USDT"], timerange)
    plain_s = time.monotonic() - started
    assert_same_result(summary, plain)
    assert ours < 2 * plain_s + 5, f"runner {ours:.1f}s, plain freqtrade {plain_s:.1f}s"


def test_a_stake_below_the_pair_minimum_is_counted(run_env, tmp_path):
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    base = json.loads((configs / "base.json").read_text())
    (configs / "tiny-stake.json").write_text(json.dumps({**base, "stake_amount": 0.05}))
    env = {**run_env, "CONFIGS_DIR": str(configs), "CONFIG": "tiny-stake.json", "PAIRS": "BTC/USDT"}
    proc, summary = run(env, "tiny-stake")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert summary["metrics"]["total_trades"] == 0
    refused = summary["warnings"]["stake_below_minimum"]
    assert refused["count"] > 0 and "BTC/USDT: stake 0.05 is below the minimum" in refused["first"]


# --- 8: protections -----------------------------------------------------------------------

def test_protections_run_when_enabled_and_the_summary_says_so(run_env, tmp_path):
    strategy_dir = strategies(tmp_path, "ProtectedCross.py")
    env = {**run_env, "STRATEGIES_DIR": str(strategy_dir), "STRATEGY": "ProtectedCross", "PAIRS": "BTC/USDT"}
    proc, off = run(env, "prot-off")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert off["protections"] == {"enabled": False, "defined": ["CooldownPeriod"], "ran": False}
    proc, on = run(env, "prot-on", ENABLE_PROTECTIONS="true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert on["protections"] == {"enabled": True, "defined": ["CooldownPeriod"], "ran": True}
    assert on["metrics"]["total_trades"] < off["metrics"]["total_trades"]
    assert status(env, "prot-on")["cache_hit"] is False
    assert_same_result(on, plain_freqtrade(tmp_path, "ProtectedCross", strategy_dir, ROOT / "data", ["BTC/USDT"],
                                           "20241001-20241015", "--enable-protections"))


# --- 9: errors keep Freqtrade's detail ----------------------------------------------------

def test_a_missing_module_is_the_error(run_env, tmp_path):
    env = {**run_env, "STRATEGIES_DIR": str(strategies(tmp_path, "NeedsTa.py")), "STRATEGY": "NeedsTa",
           "PAIRS": "BTC/USDT"}
    proc, _ = run(env, "needs-ta")
    assert proc.returncode == 4, proc.stderr[-3000:]
    message = status(env, "needs-ta")["error_message"]
    assert message.endswith("NeedsTa.py: No module named 'ta'") and "ConfigurationError" not in message


def test_a_config_schema_error_keeps_the_field_path(run_env, tmp_path):
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    base = json.loads((configs / "base.json").read_text())
    base["entry_pricing"]["price_side"] = "sideways"
    (configs / "bad.json").write_text(json.dumps(base))
    proc, _ = run({**run_env, "CONFIGS_DIR": str(configs)}, "schema", CONFIG="bad.json", PAIRS="BTC/USDT")
    assert proc.returncode == 2, proc.stderr[-3000:]
    message = status(run_env, "schema")["error_message"]
    assert "'sideways' is not one of" in message and "(at entry_pricing.price_side)" in message
