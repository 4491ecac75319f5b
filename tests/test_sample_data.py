"""The bundled candles are exactly what `strategy-runner generate-data` produces."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from strategy_runner.artifacts.base import sha256_file
from strategy_runner.sample_data import SPOT, generate

ROOT = Path(__file__).resolve().parent.parent


def test_generate_reproduces_the_bundled_files(tmp_path):
    written = generate(tmp_path)
    assert written
    for path in written:
        rel = path.relative_to(tmp_path)
        assert sha256_file(path) == sha256_file(ROOT / "data" / rel), f"{rel} differs from the bundled copy"
    bundled = {p.relative_to(ROOT / "data") for p in (ROOT / "data").rglob("*.feather")}
    assert bundled == {p.relative_to(tmp_path) for p in written}


def test_candles_are_valid_ohlcv_on_the_tick():
    df = pd.read_feather(ROOT / "data" / "BTC_USDT-5m.feather")
    assert len(df) > 365 * 288  # more than a year of 5m candles
    assert (df["high"] >= df[["open", "close"]].max(axis=1)).all()
    assert (df["low"] <= df[["open", "close"]].min(axis=1)).all()
    tick = SPOT[0].tick
    assert ((df["close"] / tick).round() * tick - df["close"]).abs().max() < 1e-6
    assert df["date"].diff().dropna().eq(pd.Timedelta("5min")).all()
