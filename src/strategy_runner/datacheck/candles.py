"""Read one candle file raw (as on disk, before Freqtrade cleans it) and check its values."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..errors import DataError

PRICES = ("open", "high", "low", "close")


@dataclass(frozen=True)
class CandleQuality:
    """What the checked window of one file holds."""

    rows: int
    duplicates: int  # rows whose date an earlier row already has (Freqtrade keeps one)
    gaps: int  # candles missing between the window's first and last (Freqtrade fills them)
    first: str | None
    last: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Freqtrade's dataformat_ohlcv -> the file suffix its data handler writes.
SUFFIXES = {"feather": ".feather", "parquet": ".parquet", "json": ".json", "jsongz": ".json.gz"}
_JSON_COLUMNS = ("date", "open", "high", "low", "close", "volume")


def read_candle_file(path: Path, columns: list[str] | None = None, name: str | None = None):
    """A candle file in any format Freqtrade writes, raw (as on disk), as a DataFrame; the
    format is the one ``name`` (default: the file's own) ends in."""
    import pandas as pd
    import pyarrow.feather as feather
    import pyarrow.parquet as parquet

    name = name or Path(path).name
    if name.endswith(".feather"):
        return feather.read_table(path, columns=columns).to_pandas()
    if name.endswith(".parquet"):
        return parquet.read_table(path, columns=columns).to_pandas()
    if name.endswith((".json", ".json.gz")):  # Freqtrade's json handler: rows of [ms, o, h, l, c, v]
        frame = pd.read_json(path, orient="values", dtype=False,
                             compression="gzip" if name.endswith(".gz") else None)
        frame.columns = list(_JSON_COLUMNS[: len(frame.columns)])
        frame["date"] = pd.to_datetime(frame["date"], unit="ms", utc=True)
        return frame[columns] if columns else frame
    raise DataError(f"{path}: not a candle file Freqtrade writes ({', '.join(SUFFIXES.values())})")


_read = read_candle_file


def check_candles(
    path: Path, *, candle_type: str, start: datetime | None = None, end: datetime | None = None,
    step: timedelta | None = None,
) -> CandleQuality:
    """Check the rows of ``path`` dated in [start, end) (either end open); gaps need ``step``.

    ``candle_type`` funding_rate files hold a rate, not prices: only its finiteness is checked,
    and their cadence (8-hourly under a 1h name) is not a gap.
    """
    import numpy as np  # here, not at the top: the supervisor imports this module for SUFFIXES

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such candle file")
    try:
        frame = _read(path)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated or not a candle file at all
        raise DataError(f"{path}: unreadable candle file ({type(exc).__name__}: {exc})") from None
    funding = candle_type == "funding_rate"
    columns = ("date", "funding_rate") if funding else ("date", *PRICES, "volume")
    if funding and "funding_rate" not in frame.columns and "open" in frame.columns:
        columns = ("date", "open")  # the older layout: the rate in "open"
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: not a candle file (missing column(s) {', '.join(missing)})")
    if len(frame) == 0:
        raise DataError(f"{path}: holds no candles")
    dates = frame["date"]
    if dates.isna().any():
        raise DataError(f"{path}: row {int(np.flatnonzero(dates.isna().to_numpy())[0])} has no date")
    in_window = np.ones(len(frame), dtype=bool)
    if start is not None:
        in_window &= (dates >= start).to_numpy()
    if end is not None:
        in_window &= (dates < end).to_numpy()
    window = frame[in_window]
    if len(window) == 0:
        raise DataError(f"{path}: holds no candles between {start} and {end}")

    def bad(what: str, mask: "np.ndarray", *shown: str) -> None:
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            row = window.iloc[i]
            values = ", ".join(f"{c}={float(row[c])!r}" for c in shown)
            raise DataError(
                f"{path}: row {window.index[i]} ({row['date']:%Y-%m-%d %H:%M}) has {what} ({values}); "
                f"{int(mask.sum())} bad row(s) in the range"
            )

    if funding:
        bad("a non-finite funding rate", ~np.isfinite(window[columns[1]].to_numpy(dtype=float)), columns[1])
    else:
        for col in PRICES:
            values = window[col].to_numpy(dtype=float)
            bad("a non-finite price", ~np.isfinite(values), col)
            bad("a price that is not positive", values <= 0, col)
        volume = window["volume"].to_numpy(dtype=float)
        bad("a non-finite volume", ~np.isfinite(volume), "volume")
        bad("a negative volume", volume < 0, "volume")
        bad("high below low", window["high"].to_numpy(dtype=float) < window["low"].to_numpy(dtype=float), "high", "low")

    unique = window["date"].drop_duplicates().sort_values()
    duplicates = len(window) - len(unique)
    gaps = 0
    if not funding and step and len(unique) > 1:
        expected = int((unique.iloc[-1] - unique.iloc[0]) / step) + 1
        gaps = max(expected - len(unique), 0)
    return CandleQuality(
        rows=len(window), duplicates=duplicates, gaps=gaps,
        first=f"{unique.iloc[0]:%Y-%m-%d %H:%M}", last=f"{unique.iloc[-1]:%Y-%m-%d %H:%M}",
    )
