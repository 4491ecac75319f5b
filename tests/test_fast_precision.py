"""engine.fast_precision gives exactly what Freqtrade's get_tick_size_over_time gives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from freqtrade.data.btanalysis.historic_precision import get_tick_size_over_time as stock

from strategy_runner.engine import fast_precision
from tests.conftest import ROOT, runner

EDGE_VALUES = [
    0.1 + 0.2, 0.3, 1e-8, 3e-8, 1.5e-8, 1e-9, 0.00012345, 1e-30, 1e-31, 5e-324, 0.0, -0.0, -1.5, -0.1 + -0.2,
    np.nan, np.inf, -np.inf, 0.5, 2.5, 0.125, 1.0, 10.0, 1000.0, 0.001, 0.01, 0.1, 9.999999999999999,
    99999.99999999999, 1e13, 12345678901234.5, 123456789012345.6, 1e20, 1.7e308, 42000.01, 0.00001, 3.14159,
    1 / 3, 2 / 3, 65432.1 * 3, 0.07 * 3, 1.005, 2.675,
]


def _real_world_like(n: int = 20_000) -> np.ndarray:
    rng = np.random.default_rng(7)
    parts = [np.array(EDGE_VALUES, dtype=np.float64)]
    for price, decimals in ((60_000, 2), (60_000, 1), (2_500, 2), (100, 3), (1.2, 4), (0.5, 5), (0.0004, 8),
                            (0.00000123, 10), (3e6, 0)):
        walk = price * np.exp(np.cumsum(rng.normal(0, 0.002, n // 10)))
        parts.append(np.round(walk, decimals))
    parts.append(rng.uniform(0, 1e5, n // 10))  # unrounded: every tie and carry case shows up
    parts.append(np.round(rng.uniform(0, 1, n // 10), 8) + np.round(rng.uniform(0, 1, n // 10), 8))  # float sums
    parts.append(rng.lognormal(0, 8, n // 10))  # 1e-10 .. 1e10
    return np.concatenate(parts)


def _stock_count(value: float) -> float:
    """The stock expression, applied to one value through pandas exactly as Freqtrade does."""
    text = pd.Series([value]).apply(
        np.format_float_positional, precision=14, unique=False, fractional=False, trim="-"
    ).str.extract(r"\.(\d*[1-9])")[0].str.len()
    return float(text.iloc[0])


def test_digit_counts_equal_the_stock_formatting_for_every_value():
    values = _real_world_like()
    fast = fast_precision.fractional_digits(values)
    stock_counts = (
        pd.Series(values).apply(np.format_float_positional, precision=14, unique=False, fractional=False, trim="-")
        .str.extract(r"\.(\d*[1-9])")[0].str.len().to_numpy(dtype=np.float64)
    )
    same = (fast == stock_counts) | (np.isnan(fast) & np.isnan(stock_counts))
    assert same.all(), list(zip(values[~same][:10], fast[~same][:10], stock_counts[~same][:10], strict=True))
    # The edge values are really edges (the stock count, one by one).
    assert _stock_count(0.1 + 0.2) == 1 and _stock_count(1e-8) == 8 and np.isnan(_stock_count(1e20))


def _candles(values: np.ndarray, freq: str = "5min") -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = len(values)
    cols = {c: rng.permutation(values) for c in ("open", "high", "low", "close")}
    return pd.DataFrame({"date": pd.date_range("2023-11-20", periods=n, freq=freq, tz="UTC", unit="ms"), **cols,
                         "volume": rng.uniform(0, 10, n)})


@pytest.mark.parametrize(
    "name,frame",
    [
        ("mixed values over months, NaN included", lambda: _candles(_real_world_like(), "1h")),
        ("bundled BTC candles (no NaN: int64 counts)", lambda: pd.read_feather(ROOT / "data" / "BTC_USDT-5m.feather")),
        ("1e-8 ticks", lambda: _candles(np.round(np.random.default_rng(1).uniform(1e-6, 1e-4, 3000), 8))),
        ("large whole prices (all NaN counts)", lambda: _candles(np.round(np.random.default_rng(2).uniform(1e5, 1e9, 3000)))),
        ("one row", lambda: _candles(np.array([0.1 + 0.2]))),
        ("no rows (stock raises)", lambda: _candles(np.array([], dtype=np.float64))),
    ],
)
def test_series_and_in_place_columns_equal_the_stock_function(name, frame):
    original = frame()
    ours, theirs = original.copy(), original.copy()
    try:
        expected = stock(theirs)
    except Exception as exc:  # noqa: BLE001 - then ours must fail the same way (no rows)
        with pytest.raises(type(exc)):
            fast_precision.get_tick_size_over_time(ours)
        return
    got = fast_precision.get_tick_size_over_time(ours)
    pd.testing.assert_series_equal(got, expected, check_exact=True, check_freq=True)
    # The stock function adds *_count and max_count to the candles in place: same columns, dtypes, values.
    pd.testing.assert_frame_equal(ours, theirs, check_exact=True)
    assert list(ours.columns) == list(theirs.columns)


def test_install_patches_backtesting_and_refuses_other_versions(monkeypatch):
    import freqtrade
    from freqtrade.optimize import backtesting

    monkeypatch.setattr(backtesting, "get_tick_size_over_time", stock)
    monkeypatch.setattr(freqtrade, "__version__", "2099.1")
    assert fast_precision.install() is False
    assert backtesting.get_tick_size_over_time is stock
    monkeypatch.undo()

    monkeypatch.setattr(backtesting, "get_tick_size_over_time", stock)
    monkeypatch.setattr(fast_precision, "CHECKED_SOURCE_SHA256", "0" * 64)  # the stock code changed
    assert fast_precision.install() is False
    assert backtesting.get_tick_size_over_time is stock
    monkeypatch.undo()

    monkeypatch.setattr(backtesting, "get_tick_size_over_time", stock)
    assert fast_precision.install() is True
    assert backtesting.get_tick_size_over_time is fast_precision.get_tick_size_over_time


def test_the_checked_source_is_the_installed_freqtrade():
    assert fast_precision.stock_source_sha256() == fast_precision.CHECKED_SOURCE_SHA256


def _run(env: dict[str, str], run_id: str, fast: bool, pairs: str, cwd: Path) -> Path:
    env = {**env, "RUN_ID": run_id, "PAIRS": pairs, "TIMERANGE": "20240901-20240915",
           "FAST_PRECISION": "true" if fast else "false", "RESULT_CACHE": "false"}
    proc = runner(env, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Path(env["RUNS_DIR"]) / run_id


def _tiny_tick_data(data_dir: Path) -> None:
    """Low-priced pairs with 1e-5 / 1e-4 ticks (DOGE, TRX): precision far from the bundled 0.01."""
    from strategy_runner.sample_data import SamplePair, generate

    generate(data_dir, start="2024-08-20", end="2024-09-16", futures=(),
             spot=(SamplePair("DOGE/USDT", 0.1071, 0.00001, 1.0), SamplePair("TRX/USDT", 0.1523, 0.0001, 0.1)))


@pytest.mark.parametrize("pairs", ["BTC/USDT,SOL/USDT", "DOGE/USDT,TRX/USDT"])
def test_a_backtest_gives_byte_identical_trades_and_metrics_with_and_without(run_env, tmp_path, pairs):
    if "DOGE" in pairs:
        run_env = {**run_env, "DATA_DIR": str(tmp_path / "data")}
        _tiny_tick_data(tmp_path / "data")
    stock_dir = _run(run_env, "precision-stock", fast=False, pairs=pairs, cwd=tmp_path)
    fast_dir = _run(run_env, "precision-fast", fast=True, pairs=pairs, cwd=tmp_path)
    # The patch really ran in one and not the other.
    assert "price precision inferred vectorised" in (fast_dir / "run.log").read_text()
    assert "price precision inferred vectorised" not in (stock_dir / "run.log").read_text()
    stock_trades = (stock_dir / "trades.csv").read_bytes()
    assert stock_trades.count(b"\n") > 5  # trades happened, so there is something to compare
    assert (fast_dir / "trades.csv").read_bytes() == stock_trades
    a = json.loads((stock_dir / "backtest-result.json").read_text())
    b = json.loads((fast_dir / "backtest-result.json").read_text())
    for key in ("metrics", "per_pair", "backtest_start", "backtest_end", "pairs"):
        assert json.dumps(a[key], sort_keys=True) == json.dumps(b[key], sort_keys=True), key
    assert (fast_dir / "freqtrade-report.txt").read_text() == (stock_dir / "freqtrade-report.txt").read_text()
