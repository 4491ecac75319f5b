"""The bundled candles are exactly what `strategy-runner generate-data` produces."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from strategy_runner.artifacts.base import sha256_file
from strategy_runner.sample_data import SAMPLE_MANIFEST, SPOT, generate, synthetic_files

ROOT = Path(__file__).resolve().parent.parent


def test_generate_reproduces_the_bundled_files(tmp_path):
    written = generate(tmp_path)
    assert written
    for path in written:
        rel = path.relative_to(tmp_path)
        assert sha256_file(path) == sha256_file(ROOT / "data" / rel), f"{rel} differs from the bundled copy"
    bundled = {p.relative_to(ROOT / "data") for p in (ROOT / "data").rglob("*.feather")}
    assert bundled | {Path(SAMPLE_MANIFEST)} == {p.relative_to(tmp_path) for p in written}


def test_the_sample_moves_like_a_market_not_a_lottery():
    """About 3 % daily volatility (BTC's in 2024 was about 3 %), and no pair ends a year at 20x or 1/20."""
    for spec in SPOT:
        close = pd.read_feather(ROOT / "data" / f"{spec.pair.replace('/', '_')}-5m.feather").set_index("date")["close"]
        daily = close.resample("1D").last()
        volatility = daily.pct_change().dropna().std()
        assert 0.02 < volatility < 0.04, (spec.pair, volatility)
        assert 0.25 < daily.max() / daily.iloc[0] < 4 and 0.25 < daily.min() / daily.iloc[0] < 4, spec.pair


def test_the_manifest_tells_sample_files_from_a_users(tmp_path):
    written = generate(tmp_path, start="2024-01-01", end="2024-01-08", futures=())
    fingerprints = {str(p.relative_to(tmp_path)): sha256_file(p) for p in written if p.suffix == ".feather"}
    assert synthetic_files(tmp_path, fingerprints) == sorted(fingerprints)
    fingerprints["BTC_USDT-5m.feather"] = "0" * 64  # the user replaced this one
    assert "BTC_USDT-5m.feather" not in synthetic_files(tmp_path, fingerprints)
    assert synthetic_files(tmp_path / "elsewhere", fingerprints) == []


def test_candles_are_valid_ohlcv_on_the_tick():
    df = pd.read_feather(ROOT / "data" / "BTC_USDT-5m.feather")
    assert len(df) > 365 * 288  # more than a year of 5m candles
    assert (df["high"] >= df[["open", "close"]].max(axis=1)).all()
    assert (df["low"] <= df[["open", "close"]].min(axis=1)).all()
    tick = SPOT[0].tick
    assert ((df["close"] / tick).round() * tick - df["close"]).abs().max() < 1e-6
    assert df["date"].diff().dropna().eq(pd.Timedelta("5min")).all()
