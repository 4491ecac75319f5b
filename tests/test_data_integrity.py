"""Issue 12, the data side: every file a backtest reads is checked, fingerprinted and keyed
(informatives declared, decorated or just read), missing informative data is a named error
unless allowed, no pair is dropped, and bad candle files get their documented outcome.

Real backtests through the runner on the bundled candles (2 weeks, 1-2 pairs), with small
strategies in tests/strategies/ written in the style of Freqtrade's docs; results compared
with plain Freqtrade (bench/plain_freqtrade.py: Freqtrade's own CLI, markets served offline).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from strategy_runner.artifacts.base import SUMMARY
from strategy_runner.datacheck import check_candles
from strategy_runner.errors import DataError

from .conftest import ROOT, runner

FIXTURES = Path(__file__).parent / "strategies"
RANGE = "20241001-20241015"


def strategies(tmp_path: Path, *names: str) -> Path:
    """A strategies directory holding only these fixture files (and the modules they import)."""
    out = tmp_path / "strategies"
    out.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(FIXTURES / name, out / name)
    return out


def candles_15m(src: Path, dest: Path) -> None:
    """15m candles resampled from the bundled 5m ones (Freqtrade's layout and dtypes)."""
    frame = pd.read_feather(src).set_index("date")
    agg = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    frame.resample("15min").agg(agg).dropna().reset_index().to_feather(dest, compression="lz4")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    out = tmp_path / "data"
    out.mkdir()
    for name in ("BTC_USDT-5m", "ETH_USDT-5m", "BTC_USDT-1h", "ETH_USDT-1h"):
        shutil.copy(ROOT / "data" / f"{name}.feather", out / f"{name}.feather")
    return out


def run(env: dict[str, str], run_id: str, **extra: str) -> tuple[subprocess.CompletedProcess, dict | None]:
    env = {**env, "RUN_ID": run_id, "TRACKING": "false", "TIMERANGE": RANGE, **extra}
    proc = runner(env, cwd=Path(env["RUNS_DIR"]).parent)
    path = Path(env["RUNS_DIR"]) / run_id / SUMMARY
    return proc, json.loads(path.read_text()) if path.exists() else None


def status(env: dict[str, str], run_id: str) -> dict:
    return json.loads((Path(env["RUNS_DIR"]) / ".status" / f"{run_id}.json").read_text())


def plain_freqtrade(tmp_path: Path, strategy: str, strategy_dir: Path, data_dir: Path, pairs: list[str],
                    timerange: str = RANGE, *args: str, config: str = "base.json") -> dict:
    """Plain ``freqtrade backtesting`` on the same files: its stats for the strategy."""
    conf = json.loads((ROOT / "configs" / config).read_text())
    conf["exchange"]["pair_whitelist"] = pairs
    work = tmp_path / f"plain-{strategy}-{len(list(tmp_path.glob('plain-*')))}"
    (work / "results").mkdir(parents=True)
    (work / "user_data").mkdir()
    (work / "config.json").write_text(json.dumps(conf))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "plain_freqtrade.py"), str(ROOT / "configs" / "markets" / "binance.json"),
         "backtesting", "--config", str(work / "config.json"), "--strategy", strategy,
         "--strategy-path", str(strategy_dir), "--datadir", str(data_dir), "--userdir", str(work / "user_data"),
         "--timerange", timerange, "--cache", "none", "--export", "trades",
         "--backtest-directory", str(work / "results"), *args],
        cwd=work, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    from freqtrade.data.btanalysis import load_backtest_stats

    return load_backtest_stats(work / "results")["strategy"][strategy]


def assert_same_result(summary: dict, plain: dict) -> None:
    assert summary["metrics"]["total_trades"] == plain["total_trades"]
    assert summary["metrics"]["profit_total_abs"] == pytest.approx(plain["profit_total_abs"], rel=1e-9, abs=1e-9)


# --- 1 and 2: informative files ----------------------------------------------------------

def test_a_missing_informative_file_is_a_data_error_naming_pair_timeframe_and_candle_type(run_env, tmp_path, data):
    env = {**run_env, "STRATEGIES_DIR": str(strategies(tmp_path, "InformativeBtc15m.py")), "DATA_DIR": str(data)}
    proc, summary = run(env, "inf-missing", STRATEGY="InformativeBtc15m", PAIRS="ETH/USDT")
    assert proc.returncode == 3, proc.stderr[-3000:]
    item = status(env, "inf-missing")
    assert item["error_type"] == "DataStaleError" and summary is None
    assert "BTC/USDT 15m spot" in item["error_message"] and "BTC_USDT-15m.feather" in item["error_message"]
    assert "ALLOW_MISSING_INFORMATIVE" in item["error_message"]


def test_an_allowed_missing_informative_is_recorded_and_its_result_not_reused_once_the_file_is_there(
        run_env, tmp_path, data):
    strategy_dir = strategies(tmp_path, "InformativeBtc15m.py")
    env = {**run_env, "STRATEGIES_DIR": str(strategy_dir), "DATA_DIR": str(data),
           "STRATEGY": "InformativeBtc15m", "PAIRS": "ETH/USDT", "ALLOW_MISSING_INFORMATIVE": "true"}
    proc, without = run(env, "inf-a")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert without["metrics"]["total_trades"] == 0
    assert without["data_quality"]["allow_missing_informative"] is True
    assert any("BTC/USDT 15m spot" in m for m in without["data_quality"]["missing_informative"])
    assert without["warnings"]["missing_informative"]["count"] == 1
    assert without["identity"]["data_files"]["BTC_USDT-15m.feather"] == "missing"
    shown = runner(env, "status", "inf-a", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "warning      missing_informative x 1" in shown.stdout
    assert "BTC/USDT 15m spot: no data" in shown.stdout and "(ALLOW_MISSING_INFORMATIVE)" in shown.stdout

    candles_15m(data / "BTC_USDT-5m.feather", data / "BTC_USDT-15m.feather")
    proc, added = run(env, "inf-b")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert status(env, "inf-b")["cache_hit"] is False and added["cache"]["key"] != without["cache"]["key"]
    assert added["data_quality"]["missing_informative"] == [] and added["warnings"] == {}
    assert {f["file"]: f["role"] for f in added["data_quality"]["files"]} == {
        "ETH_USDT-5m.feather": "main", "BTC_USDT-15m.feather": "informative"}
    assert_same_result(added, plain_freqtrade(tmp_path, "InformativeBtc15m", strategy_dir, data, ["ETH/USDT"]))
    assert added["metrics"]["total_trades"] > 0

    # The informative file changes: the key over every file read changes with it.
    frame = pd.read_feather(data / "BTC_USDT-15m.feather")
    frame.loc[frame.index[-200:], ["open", "high", "low", "close"]] *= 1.01
    frame.to_feather(data / "BTC_USDT-15m.feather", compression="lz4")
    proc, changed = run(env, "inf-c")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert status(env, "inf-c")["cache_hit"] is False
    assert changed["identity"]["data_files"]["BTC_USDT-15m.feather"] != added["identity"]["data_files"]["BTC_USDT-15m.feather"]
    proc, again = run(env, "inf-d")
    assert status(env, "inf-d")["cache_hit"] is True and again["metrics"] == changed["metrics"]


def test_decorated_and_undeclared_informatives_are_in_the_file_set(run_env, tmp_path, data):
    env = {**run_env, "STRATEGIES_DIR": str(strategies(tmp_path, "DecoratedInformative.py", "UndeclaredInformative.py")),
           "DATA_DIR": str(data)}
    proc, summary = run(env, "decorated", STRATEGY="DecoratedInformative", PAIRS="ETH/USDT")
    assert proc.returncode == 0, proc.stderr[-3000:]
    roles = {f["file"]: (f["pair"], f["timeframe"], f["role"]) for f in summary["data_quality"]["files"]}
    assert roles == {"ETH_USDT-5m.feather": ("ETH/USDT", "5m", "main"),
                     "ETH_USDT-1h.feather": ("ETH/USDT", "1h", "informative"),
                     "BTC_USDT-1h.feather": ("BTC/USDT", "1h", "informative")}
    assert set(summary["identity"]["data_files"]) == set(roles)

    # Read through dp.get_pair_dataframe without being declared: checked when first read.
    proc, _ = run(env, "undeclared", STRATEGY="UndeclaredInformative", PAIRS="BTC/USDT")
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert "SOL/USDT 1h spot" in status(env, "undeclared")["error_message"]


# --- 4: no pair dropped -------------------------------------------------------------------

@pytest.mark.parametrize("pairs,code,named", [
    ("BTC/USDT,ARB/USDT", 2, "ARB/USDT: not a market of binance"),
    ("ARB/USDT", 2, "ARB/USDT: not a market of binance"),
    ("BTC/USDT,ADA/USDT", 3, "ADA/USDT 5m spot: no data"),
])
def test_a_pair_that_cannot_run_fails_the_run_naming_it(run_env, pairs, code, named):
    proc, summary = run(run_env, "pairs", PAIRS=pairs)
    assert proc.returncode == code, proc.stderr[-3000:]
    assert named in status(run_env, "pairs")["error_message"] and summary is None


# --- 5: candle values ---------------------------------------------------------------------

BAD_AT = pd.Timestamp("2024-10-05 12:00", tz="UTC")


def _damaged(src: Path, dest: Path, kind: str, at: pd.Timestamp = BAD_AT) -> None:
    frame = pd.read_feather(src)
    i = int(frame.index[frame["date"] == at][0])
    if kind == "nan":
        frame.loc[i, "close"] = np.nan
    elif kind == "inf":
        frame.loc[i, "open"] = np.inf
    elif kind == "negative":
        frame.loc[i, "low"] = -1.0
    elif kind == "zero":
        frame.loc[i, "open"] = 0.0
    elif kind == "high_below_low":
        frame.loc[i, "high"] = frame.loc[i, "low"] - 1
    elif kind == "negative_volume":
        frame.loc[i, "volume"] = -5.0
    elif kind == "gap":
        frame = pd.concat([frame.iloc[:i], frame.iloc[i + 10:]])
    elif kind == "duplicate":
        frame = pd.concat([frame.iloc[:i + 1], frame.iloc[i:i + 3], frame.iloc[i + 1:]])
    frame.reset_index(drop=True).to_feather(dest, compression="lz4")


WINDOW = {"start": datetime(2024, 10, 1, tzinfo=UTC), "end": datetime(2024, 10, 15, tzinfo=UTC),
          "step": timedelta(minutes=5)}


@pytest.mark.parametrize("kind,named", [
    ("nan", "non-finite price (close=nan)"), ("inf", "non-finite price (open=inf)"),
    ("negative", "price that is not positive (low=-1.0)"), ("zero", "price that is not positive (open=0.0)"),
    ("high_below_low", "high below low"), ("negative_volume", "negative volume"),
])
def test_a_bad_candle_value_names_the_file_and_the_first_bad_row(tmp_path, kind, named):
    path = tmp_path / "BTC_USDT-5m.feather"
    _damaged(ROOT / "data" / "BTC_USDT-5m.feather", path, kind)
    with pytest.raises(DataError) as err:
        check_candles(path, candle_type="spot", **WINDOW)
    assert str(path) in str(err.value) and named in str(err.value) and "(2024-10-05 12:00)" in str(err.value)
    # Outside the rows the run reads, the same file passes (documented: only the range is checked).
    check_candles(path, candle_type="spot", start=WINDOW["start"], end=BAD_AT, step=WINDOW["step"])


def test_unreadable_empty_and_foreign_files_are_data_errors(tmp_path):
    raw = (ROOT / "data" / "BTC_USDT-5m.feather").read_bytes()
    (tmp_path / "truncated.feather").write_bytes(raw[: len(raw) // 2])
    pd.read_feather(ROOT / "data" / "BTC_USDT-5m.feather").iloc[:0].to_feather(tmp_path / "empty.feather")
    pd.DataFrame({"date": pd.to_datetime([1, 2], unit="s", utc=True), "price": [1.0, 2.0]}).to_feather(
        tmp_path / "foreign.feather")
    for name, said in (("truncated", "unreadable candle file"), ("empty", "holds no candles"),
                       ("foreign", "missing column(s) open, high, low, close, volume"),
                       ("absent", "no such candle file")):
        with pytest.raises(DataError, match=re.escape(said)):
            check_candles(tmp_path / f"{name}.feather", candle_type="spot", **WINDOW)


def test_gaps_and_duplicates_are_counted():
    quality = check_candles(ROOT / "data" / "BTC_USDT-5m.feather", candle_type="spot", **WINDOW)
    assert (quality.rows, quality.gaps, quality.duplicates) == (14 * 288, 0, 0)


def test_bad_candles_in_a_real_backtest(run_env, tmp_path, data):
    env = {**run_env, "DATA_DIR": str(data), "PAIRS": "BTC/USDT"}
    _damaged(ROOT / "data" / "BTC_USDT-5m.feather", data / "BTC_USDT-5m.feather", "nan")
    proc, _ = run(env, "nan-candle")
    assert proc.returncode == 3, proc.stderr[-3000:]
    message = status(env, "nan-candle")["error_message"]
    assert "BTC_USDT-5m.feather: row " in message and "(2024-10-05 12:00)" in message and "close=nan" in message

    raw = (ROOT / "data" / "BTC_USDT-5m.feather").read_bytes()
    (data / "BTC_USDT-5m.feather").write_bytes(raw[: len(raw) // 2])
    proc, _ = run(env, "truncated")
    assert proc.returncode == 3, proc.stderr[-3000:]  # a data error, not the strategy's
    assert "BTC_USDT-5m.feather is unreadable" in status(env, "truncated")["error_message"]

    _damaged(ROOT / "data" / "BTC_USDT-5m.feather", data / "BTC_USDT-5m.feather", "gap")
    _damaged(data / "BTC_USDT-5m.feather", data / "BTC_USDT-5m.feather", "duplicate", BAD_AT + pd.Timedelta("1D"))
    proc, summary = run(env, "gappy")
    assert proc.returncode == 0, proc.stderr[-3000:]
    quality = summary["data_quality"]
    assert (quality["gaps"], quality["duplicates"]) == (10, 3)
    assert quality["per_file"]["BTC_USDT-5m.feather"]["gaps"] == 10



def test_detail_candles_and_futures_mark_and_funding_are_in_the_file_set(run_env, tmp_path):
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    base = json.loads((configs / "base.json").read_text())
    (configs / "detail.json").write_text(json.dumps({**base, "timeframe_detail": "5m"}))
    env = {**run_env, "CONFIGS_DIR": str(configs), "STRATEGIES_DIR": str(strategies(tmp_path, "HourlySar.py"))}
    proc, detail = run(env, "detail", CONFIG="detail.json", STRATEGY="HourlySar", PAIRS="BTC/USDT")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {f["file"]: f["role"] for f in detail["data_quality"]["files"]} == {
        "BTC_USDT-1h.feather": "main", "BTC_USDT-5m.feather": "detail"}

    proc, futures = run(run_env, "futures", STRATEGY="EmaCrossFutures", PAIRS="BTC/USDT:USDT")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {f["file"]: f["role"] for f in futures["data_quality"]["files"]} == {
        "futures/BTC_USDT_USDT-5m-futures.feather": "main", "futures/BTC_USDT_USDT-1h-mark.feather": "mark",
        "futures/BTC_USDT_USDT-1h-funding_rate.feather": "funding_rate"}
    assert set(futures["identity"]["data_files"]) == {f["file"] for f in futures["data_quality"]["files"]}


def test_inactive_and_wrong_kind_markets_are_named(tmp_path):
    from strategy_runner.engine.backtest import EngineSpec, check_pairs_in_markets
    from strategy_runner.errors import ValidationError

    markets = {"BTC/USDT": {"type": "spot", "active": True}, "OLD/USDT": {"type": "spot", "active": False},
               "ETH/USDT:USDT": {"type": "swap", "swap": True, "active": True}}

    def spec(pairs: list[str]) -> EngineSpec:
        config = {"trading_mode": "spot", "exchange": {"pair_whitelist": pairs}}
        return EngineSpec("S", tmp_path / "S.py", config, tmp_path, tmp_path, tmp_path, markets,
                          markets_source="markets snapshot m.json")

    check_pairs_in_markets(spec(["BTC/USDT"]))
    with pytest.raises(ValidationError) as err:
        check_pairs_in_markets(spec(["BTC/USDT", "OLD/USDT", "ETH/USDT:USDT"]))
    message = str(err.value)
    assert "OLD/USDT is an inactive market in the markets snapshot m.json" in message
    assert "ETH/USDT:USDT is a swap market, not usable in a spot config" in message
    assert "BTC/USDT " not in message  # a pair in no snapshot at all: tests/test_markets.py (markets.resolve)


def test_detail_candles_count_in_the_memory_estimate():
    from strategy_runner.guard import estimate as est

    hourly = est.estimate_peak(["BTC/USDT"], "1h", "20240101-20240201", "spot", ROOT / "data")
    detailed = est.estimate_peak(["BTC/USDT"], "1h", "20240101-20240201", "spot", ROOT / "data", timeframe_detail="5m")
    assert (hourly.main_candles, detailed.main_candles) == (31 * 24, 31 * 24 * 13)
