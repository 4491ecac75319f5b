"""A vectorised ``get_tick_size_over_time``: same result, a fraction of the data-load time.

Freqtrade infers each pair's price precision per month from the candles: for every price
it formats 14 significant digits (``numpy.format_float_positional``, a Python call per
value), counts the fractional digits left after trimming zeros, and keeps the monthly
maximum. On a 10 pair-year backtest that row-wise apply is most of the data load.

Here the digit count comes from integer arithmetic on ``round(|x| * 10**(13 - e))`` (e the
decimal exponent). That product carries at most ~0.03 of absolute float error, so any
value whose scaled fraction lies near .5 (a rounding decision the float product could get
wrong), near a power of ten (the exponent is uncertain), outside 1e-30..1e14, zero or not
finite is counted by the stock per-value formatting instead. Everything observable is
reproduced: the returned Series and the columns the stock function adds to the candles
in place (``open_count`` ... ``max_count``, int64 when no value is NaN, else float64).

Installed on the runner's path only (engine.backtest), for the pinned Freqtrade, and only
when the stock function's source is the one this was checked against.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from numpy import format_float_positional
from pandas import DataFrame, Series

from ..logs import get_logger
from .offline import not_pinned, source_sha256

log = get_logger(__name__)

_COLUMNS = ("open", "high", "low", "close")
_FRACTION = re.compile(r"\.(\d*[1-9])")
_SIGNIFICANT = 14  # Freqtrade's precision=14


def _count_slow(value: float) -> float:
    """The stock count for one value: fractional digits of its 14-significant-digit form."""
    text = format_float_positional(value, precision=_SIGNIFICANT, unique=False, fractional=False, trim="-")
    match = _FRACTION.search(text)
    return float(len(match.group(1))) if match else np.nan


def fractional_digits(values: np.ndarray) -> np.ndarray:
    """For each value, the stock count as float64 (NaN where there is no fractional digit)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.full(values.shape, np.nan)
    magnitude = np.abs(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        lg = np.log10(magnitude)
        exponent = np.floor(lg)
        fast = (
            np.isfinite(lg)
            & (exponent >= -30)
            & (exponent <= _SIGNIFICANT - 1)
            & (np.abs(lg - np.rint(lg)) > 1e-9)  # not next to a power of ten
        )
    idx = np.flatnonzero(fast)
    shift = (_SIGNIFICANT - 1 - exponent[idx]).astype(np.int64)  # fractional digits printed
    scaled = magnitude[idx] * np.power(10.0, shift)
    near_tie = np.abs(scaled - np.floor(scaled) - 0.5) < 0.05
    fast[idx[near_tie]] = False
    keep = ~near_tie
    idx, shift, scaled = idx[keep], shift[keep], scaled[keep]
    digits = np.rint(scaled).astype(np.int64)  # < 10**14 + 1: exact in int64
    fraction = np.where(shift >= _SIGNIFICANT, digits, digits % np.power(10, np.minimum(shift, 18)))
    trailing = np.zeros(fraction.shape, dtype=np.int64)
    rest = fraction.copy()
    while True:
        more = (rest != 0) & (rest % 10 == 0)
        if not more.any():
            break
        rest[more] //= 10
        trailing[more] += 1
    counts = np.where(fraction != 0, (shift - trailing).astype(np.float64), np.nan)
    out[idx] = counts
    for i in np.flatnonzero(~fast):
        out[i] = _count_slow(float(values[i]))
    return out


def get_tick_size_over_time(candles: DataFrame) -> Series:
    """Drop-in for ``freqtrade.data.btanalysis.get_tick_size_over_time`` (pinned version)."""
    if len(candles) == 0 or any(candles[c].dtype != np.float64 for c in _COLUMNS):
        return _stock()(candles)  # shapes this was not checked for: the stock path
    for col in _COLUMNS:
        counts = fractional_digits(candles[col].to_numpy())
        # str.len() gives int64 when no value is missing, float64 otherwise.
        candles[f"{col}_count"] = counts if np.isnan(counts).any() else counts.astype(np.int64)
    # From here on, the stock function's own code, unchanged.
    candles["max_count"] = candles[["open_count", "close_count", "high_count", "low_count"]].max(axis=1)
    candles1 = candles.set_index("date", drop=True)
    monthly_count_avg1 = candles1["max_count"].resample("MS").max()
    monthly_open_count_avg = 1 / 10**monthly_count_avg1
    return monthly_open_count_avg


def _stock():
    from freqtrade.data.btanalysis.historic_precision import get_tick_size_over_time as stock

    return stock


def stock_source_sha256() -> str:
    return source_sha256(_stock())


#: The stock function this replacement was proven against (freqtrade 2026.9).
CHECKED_SOURCE_SHA256 = "07ce8171395ae00d5aff293a76a03e80ef1bdaf338298370748d8d685e8d49af"


def _refusal(backtesting: Any) -> str | None:
    """Why the vectorised function must not be installed here, or None."""
    if reason := not_pinned():
        return reason
    if getattr(backtesting, "get_tick_size_over_time", None) not in (_stock(), get_tick_size_over_time):
        return "freqtrade.optimize.backtesting.get_tick_size_over_time is not the stock function"
    if stock_source_sha256() != CHECKED_SOURCE_SHA256:
        return "the stock get_tick_size_over_time changed since the replacement was proven"
    return None


def install() -> bool:
    """Make Backtesting use the vectorised function. False (stock path kept) on any mismatch."""
    from freqtrade.optimize import backtesting

    if reason := _refusal(backtesting):
        log.warning("fast price precision not installed; using freqtrade's own", reason=reason)
        return False
    backtesting.get_tick_size_over_time = get_tick_size_over_time
    log.info("price precision inferred vectorised (engine.fast_precision)")
    return True
