"""Which candle files a run needs, whether they cover its range, and their fingerprint.

Pure file work (pyarrow reads only the date column); no Freqtrade import, so the
supervisor and the S3 data fetcher can use it too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ..artifacts.base import sha256_file
from ..errors import DataError

_TF_MINUTES = {"m": 1, "h": 60, "d": 1440, "w": 10080}


def timeframe_delta(timeframe: str) -> timedelta:
    return timedelta(minutes=int(timeframe[:-1]) * _TF_MINUTES[timeframe[-1]])


def _stem(pair: str) -> str:
    return pair.replace("/", "_").replace(":", "_")


@dataclass(frozen=True)
class CandleFile:
    pair: str
    timeframe: str
    candle_type: str  # spot | futures | mark | funding_rate
    relpath: str  # relative to the data directory

    @property
    def is_main(self) -> bool:
        """The candles the strategy trades on (mark and funding only need to exist)."""
        return self.candle_type in ("spot", "futures")


def needed_files(pairs: list[str], timeframe: str, trading_mode: str) -> list[CandleFile]:
    """Freqtrade's feather layout for these pairs (binance: 1h mark and funding rates)."""
    files = []
    for pair in pairs:
        if trading_mode == "futures":
            s = f"futures/{_stem(pair)}"
            files += [
                CandleFile(pair, timeframe, "futures", f"{s}-{timeframe}-futures.feather"),
                CandleFile(pair, "1h", "mark", f"{s}-1h-mark.feather"),
                CandleFile(pair, "1h", "funding_rate", f"{s}-1h-funding_rate.feather"),
            ]
        else:
            files.append(CandleFile(pair, timeframe, "spot", f"{_stem(pair)}-{timeframe}.feather"))
    return files


def _span(path: Path) -> tuple[datetime, datetime] | None:
    import pyarrow.feather as feather

    dates = feather.read_table(path, columns=["date"]).column("date")
    if len(dates) == 0:
        return None
    first, last = dates[0].as_py(), dates[-1].as_py()
    return first.astimezone(UTC), last.astimezone(UTC)


def parse_day(text: str) -> datetime | None:
    return datetime.strptime(text, "%Y%m%d").replace(tzinfo=UTC) if text else None


def check_coverage(data_dir: Path, files: list[CandleFile], timerange: str, startup_candles: int) -> None:
    """Every file exists and the main candles cover [start - startup, end).

    Raises DataError naming each pair, timeframe, the range asked for and the range on disk.
    """
    start_s, _, end_s = timerange.partition("-")
    start, end = parse_day(start_s), parse_day(end_s)
    problems = []
    for f in files:
        path = Path(data_dir) / f.relpath
        if not path.is_file():
            problems.append(f"{f.pair} {f.timeframe} {f.candle_type}: no data ({path} does not exist)")
            continue
        span = _span(path)
        if span is None:
            problems.append(f"{f.pair} {f.timeframe} {f.candle_type}: {path} holds no candles")
            continue
        if not f.is_main:
            continue
        step = timeframe_delta(f.timeframe)
        need_from = start - step * startup_candles if start else None
        need_to = end - step if end else None
        if (need_from and span[0] > need_from) or (need_to and span[1] < need_to):
            asked = f"{need_from or span[0]:%Y-%m-%d %H:%M} to {(need_to or span[1]) + step:%Y-%m-%d %H:%M}"
            problems.append(
                f"{f.pair} {f.timeframe}: asked for {asked} (TIMERANGE {timerange} plus {startup_candles} "
                f"startup candles), available {span[0]:%Y-%m-%d %H:%M} to {span[1] + step:%Y-%m-%d %H:%M}"
            )
    if problems:
        raise DataError("data does not cover the run: " + "; ".join(problems))


def fingerprint(data_dir: Path, files: list[CandleFile]) -> tuple[str, dict[str, str]]:
    """SHA-256 of each file used, and one SHA-256 over all of them (path and digest)."""
    per_file = {f.relpath: sha256_file(Path(data_dir) / f.relpath) for f in files}
    overall = hashlib.sha256("\n".join(f"{k} {v}" for k, v in sorted(per_file.items())).encode()).hexdigest()
    return overall, per_file
