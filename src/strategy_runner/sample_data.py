"""Deterministic sample candles in Freqtrade's layout (``strategy-runner generate-data``).

Synthetic: a seeded random walk with trending regimes (so trend strategies trade), calibrated
to a crypto market's scale (about 3 % daily volatility, like BTC's in 2024, with regimes of
one to five days drifting about 0.9 % a day), prices rounded to each market's tick (Freqtrade
infers price precision from the candles), 5m candles plus 1h candles resampled from them;
futures pairs also get 1h mark candles and 8-hourly funding rates. Same seed, same versions:
byte-identical files. ``SAMPLE_MANIFEST`` lists every file's SHA-256, so a result computed on
them can say it ran on synthetic data (and one on a user's files does not).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class SamplePair:
    pair: str
    start_price: float
    tick: float  # price step
    step: float  # amount step


SPOT = (
    SamplePair("BTC/USDT", 42_000.0, 0.01, 0.00001),
    SamplePair("ETH/USDT", 2_300.0, 0.01, 0.0001),
    SamplePair("SOL/USDT", 100.0, 0.01, 0.001),
)
FUTURES = (
    SamplePair("BTC/USDT:USDT", 42_000.0, 0.1, 0.001),
    SamplePair("ETH/USDT:USDT", 2_300.0, 0.01, 0.001),
)
START = "2023-12-01"  # a month of warm-up before the first full year
END = "2025-01-01"  # exclusive
SEED = 20240101
#: Per 5m candle: the standard deviation of a regime's drift, and the scale of the t(4) noise.
REGIME_DRIFT = 0.00003
NOISE = 0.0011
SAMPLE_MANIFEST = "SAMPLE-DATA.json"


def file_stem(pair: str) -> str:
    """BTC/USDT:USDT -> BTC_USDT_USDT (Freqtrade's file naming)."""
    return pair.replace("/", "_").replace(":", "_")


def _decimals(step: float) -> int:
    return max(0, -int(np.floor(np.log10(step) + 1e-9)))


def candles(spec: SamplePair, start: str = START, end: str = END, seed: int = SEED) -> pd.DataFrame:
    """5m OHLCV candles for one pair; the pair's name salts the seed."""
    rng = np.random.default_rng([seed, zlib.crc32(spec.pair.encode())])
    dates = pd.date_range(start, end, freq="5min", inclusive="left", tz="UTC", unit="ms")
    n = len(dates)
    # Regimes of one to five days with their own drift: trends and ranges alternate.
    drift = np.empty(n)
    i = 0
    while i < n:
        length = int(rng.integers(288, 288 * 5))
        drift[i : i + length] = rng.normal(0.0, REGIME_DRIFT)
        i += length
    returns = drift + rng.standard_t(4, n) * NOISE
    close = spec.start_price * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[spec.start_price], close[:-1]])
    wick = np.abs(rng.normal(0.0, 0.0008, (2, n)))
    dp, dv = _decimals(spec.tick), _decimals(spec.step)
    open_, close = np.round(open_, dp), np.round(close, dp)
    high = np.maximum(np.round(np.maximum(open_, close) * (1 + wick[0]), dp), np.maximum(open_, close))
    low = np.minimum(np.round(np.minimum(open_, close) * (1 - wick[1]), dp), np.minimum(open_, close))
    volume = np.round(rng.lognormal(3.0, 0.8, n) * 1000 / spec.start_price, dv)
    return pd.DataFrame(
        {"date": dates, "open": open_, "high": high, "low": low, "close": close, "volume": volume}
    )


def resample(df: pd.DataFrame, rule: str) -> pd.DataFrame:
    out = (
        df.set_index("date")
        .resample(rule, label="left", closed="left")
        .agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
        .dropna()
        .reset_index()
    )
    return out


def _store(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Freqtrade's own feather writer settings.
    df.reset_index(drop=True).to_feather(path, compression_level=9, compression="lz4")


def generate(data_dir: Path, *, seed: int = SEED, start: str = START, end: str = END,
             spot: tuple[SamplePair, ...] = SPOT, futures: tuple[SamplePair, ...] = FUTURES) -> list[Path]:
    """Write every sample file under ``data_dir``; returns the paths written."""
    data_dir = Path(data_dir)
    written: list[Path] = []
    for spec in spot:
        df = candles(spec, start, end, seed)
        for tf, frame in (("5m", df), ("1h", resample(df, "1h"))):
            path = data_dir / f"{file_stem(spec.pair)}-{tf}.feather"
            _store(frame, path)
            written.append(path)
    for spec in futures:
        df = candles(spec, start, end, seed)
        stem = data_dir / "futures" / file_stem(spec.pair)
        hourly = resample(df, "1h")
        for tf, frame in (("5m", df), ("1h", hourly)):
            _store(frame, Path(f"{stem}-{tf}-futures.feather"))
            written.append(Path(f"{stem}-{tf}-futures.feather"))
        # Mark price: the last price nudged by a small basis; funding every 8 hours.
        rng = np.random.default_rng([seed, zlib.crc32(spec.pair.encode()), 1])
        mark = hourly.copy()
        basis = 1 + rng.normal(0.0, 0.0002, len(mark))
        for col in ("open", "high", "low", "close"):
            mark[col] = np.round(mark[col] * basis, _decimals(spec.tick))
        mark["high"] = mark[["open", "high", "low", "close"]].max(axis=1)
        mark["low"] = mark[["open", "high", "low", "close"]].min(axis=1)
        mark["volume"] = 0.0
        _store(mark, Path(f"{stem}-1h-mark.feather"))
        funding_dates = hourly["date"][hourly["date"].dt.hour % 8 == 0].reset_index(drop=True)
        funding = pd.DataFrame({
            "date": funding_dates,
            "funding_rate": np.round(rng.normal(0.0001, 0.00008, len(funding_dates)), 8),
        })
        _store(funding, Path(f"{stem}-1h-funding_rate.feather"))
        written += [Path(f"{stem}-1h-mark.feather"), Path(f"{stem}-1h-funding_rate.feather")]
    manifest = data_dir / SAMPLE_MANIFEST
    manifest.write_text(json.dumps({
        "synthetic": True, "generator": "strategy-runner generate-data", "seed": seed,
        "files": {str(p.relative_to(data_dir)): hashlib.sha256(p.read_bytes()).hexdigest() for p in written},
    }, indent=1, sort_keys=True) + "\n")
    return [*written, manifest]


def synthetic_files(data_dir: Path, fingerprints: dict[str, str]) -> list[str]:
    """Which of ``fingerprints`` (path relative to data_dir -> SHA-256) are the generated sample files."""
    try:
        known = json.loads((Path(data_dir) / SAMPLE_MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError):
        return []
    return sorted(path for path, digest in fingerprints.items() if known.get(path) == digest)


def provenance(data_dir: Path, data_files: dict[str, str]) -> dict[str, object]:
    """What the candles a result was computed from are: the bundled synthetic sample, a user's, or both."""
    synthetic = synthetic_files(data_dir, data_files)
    kind = "user" if not synthetic else "synthetic" if len(synthetic) == len(data_files) else "mixed"
    return {"kind": kind, "synthetic_files": synthetic}
