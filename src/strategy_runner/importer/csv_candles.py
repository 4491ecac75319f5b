"""Read a CSV of candles and check it, naming the row when it is wrong.

Accepted: a header row; a date column (date, datetime, time, timestamp, open_time, gmt time,
...: ISO dates, `dd.mm.yyyy hh:mm:ss`, or epoch seconds/milliseconds; naive times are UTC);
open, high, low, close, volume (or o/h/l/c/v, "tick volume"). Other columns are ignored.
Checked: every date parses, dates strictly increase (no duplicates), each sits on the
timeframe's grid, prices are positive and finite, low <= open, close <= high, volume >= 0.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError

DATE_NAMES = ("date", "datetime", "time", "timestamp", "open_time", "opentime", "gmt_time", "time_utc", "local_time")
COLUMN_NAMES = {
    "open": ("open", "o", "open_price"),
    "high": ("high", "h", "high_price"),
    "low": ("low", "l", "low_price"),
    "close": ("close", "c", "close_price", "last"),
    "volume": ("volume", "v", "vol", "tick_volume", "base_volume", "volume_base"),
}


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def read_candles(path: Path, timeframe: str) -> pd.DataFrame:
    """Freqtrade's OHLCV frame (date UTC, open, high, low, close, volume as float64)."""
    try:
        raw = pd.read_csv(path, dtype=str, skipinitialspace=True)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: not a readable CSV ({exc})") from None
    keys = {_key(c): c for c in raw.columns}
    date_col = next((keys[n] for n in DATE_NAMES if n in keys), None)
    if date_col is None:
        raise DataError(f"{path}: no date column (expected one of {', '.join(DATE_NAMES)}); columns are "
                        f"{', '.join(map(str, raw.columns))}")
    columns = {}
    for target, names in COLUMN_NAMES.items():
        found = next((keys[n] for n in names if n in keys), None)
        if found is None:
            raise DataError(f"{path}: no {target} column (expected one of {', '.join(names)})")
        columns[target] = found
    if raw.empty:
        raise DataError(f"{path}: has a header but no candles")
    frame = pd.DataFrame({"date": _dates(path, raw[date_col])})
    for target, source in columns.items():
        values = pd.to_numeric(raw[source].str.replace(",", "", regex=False), errors="coerce")
        frame[target] = values.astype("float64")
    _check(path, frame, timeframe)
    return frame


def _row(index: int) -> int:
    return int(index) + 2  # the header is line 1


def _dates(path: Path, text: pd.Series) -> pd.Series:
    text = text.str.strip()
    numeric = pd.to_numeric(text, errors="coerce")
    if numeric.notna().all():
        unit = "ms" if numeric.abs().max() > 1e11 else "s"
        dates = pd.to_datetime(numeric, unit=unit, utc=True)
    else:
        dotted = text.str.match(r"^\d{1,2}\.\d{1,2}\.\d{4}").all()
        dates = pd.to_datetime(text, utc=True, errors="coerce", dayfirst=bool(dotted),
                               format=None if dotted else "ISO8601")
    bad = dates.isna()
    if bad.any():
        index = bad.idxmax()
        raise DataError(f"{path}: row {_row(index)}: {text[index]!r} is not a date")
    return dates.dt.as_unit("ms")


def _check(path: Path, frame: pd.DataFrame, timeframe: str) -> None:
    from freqtrade.exchange import timeframe_to_seconds

    def first(mask: pd.Series, what: str) -> None:
        if mask.any():
            index = mask.idxmax()
            row = frame.loc[index]
            raise DataError(f"{path}: row {_row(index)} ({row['date']:%Y-%m-%d %H:%M}): {what}")

    prices = frame[["open", "high", "low", "close"]]
    first(~np.isfinite(prices).all(axis=1), "a price is missing or not a number")
    first((prices <= 0).any(axis=1), "a price is not positive")
    first(~np.isfinite(frame["volume"]) | (frame["volume"] < 0), "volume is missing or negative")
    first(frame["high"] < frame[["open", "close", "low"]].max(axis=1), "high is below open, close or low")
    first(frame["low"] > frame[["open", "close"]].min(axis=1), "low is above open or close")
    step = frame["date"].diff()
    first(step == pd.Timedelta(0), "the same date as the row before (a duplicate candle)")
    first(step < pd.Timedelta(0), "earlier than the row before (candles must be sorted by date)")
    seconds = timeframe_to_seconds(timeframe)
    first(frame["date"].astype("int64") // 1000 % seconds != 0, f"not on the {timeframe} grid (a candle's open time)")
