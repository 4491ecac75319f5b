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

#: The digest recorded for a file that does not exist.
MISSING = "missing"
_TF_MINUTES = {"m": 1, "h": 60, "d": 1440, "w": 10080}


def timeframe_delta(timeframe: str) -> timedelta:
    return timedelta(minutes=int(timeframe[:-1]) * _TF_MINUTES[timeframe[-1]])


def _stem(pair: str) -> str:
    return pair.replace("/", "_").replace(":", "_")


@dataclass(frozen=True)
class CandleFile:
    pair: str
    timeframe: str
    candle_type: str  # spot | futures | mark | funding_rate | ...
    relpath: str  # relative to the data directory
    role: str = "main"  # main | detail | informative | mark | funding_rate

    @property
    def is_main(self) -> bool:
        """The candles the strategy trades on: they must cover the startup candles too."""
        return self.role == "main"

    @property
    def needs_range(self) -> bool:
        """Candles read over the range (mark and funding rates only need to exist)."""
        return self.role in ("main", "detail", "informative")

    def describe(self) -> str:
        return f"{self.pair} {self.timeframe} {self.candle_type}"

    def to_dict(self) -> dict[str, str]:
        return {"pair": self.pair, "timeframe": self.timeframe, "candle_type": self.candle_type,
                "file": self.relpath, "role": self.role}


def needed_files(pairs: list[str], timeframe: str, trading_mode: str, data_format: str = "feather") -> list[CandleFile]:
    """The main files of these pairs in Freqtrade's layout (binance: 1h mark and funding rates),
    named for the config's dataformat_ohlcv.

    A guess made before the strategy is loaded (memory estimate, S3 fetch): the worker
    records the full set Freqtrade reads (engine.files).
    """
    from ..datacheck.candles import SUFFIXES

    suffix = SUFFIXES.get(data_format, ".feather")
    return [CandleFile(f.pair, f.timeframe, f.candle_type, f.relpath.removesuffix(".feather") + suffix, f.role)
            for f in _feather_files(pairs, timeframe, trading_mode)]


def _feather_files(pairs: list[str], timeframe: str, trading_mode: str) -> list[CandleFile]:
    files = []
    for pair in pairs:
        if trading_mode == "futures":
            s = f"futures/{_stem(pair)}"
            files += [
                CandleFile(pair, timeframe, "futures", f"{s}-{timeframe}-futures.feather"),
                CandleFile(pair, "1h", "mark", f"{s}-1h-mark.feather", "mark"),
                CandleFile(pair, "1h", "funding_rate", f"{s}-1h-funding_rate.feather", "funding_rate"),
            ]
        else:
            files.append(CandleFile(pair, timeframe, "spot", f"{_stem(pair)}-{timeframe}.feather"))
    return files


def _span(path: Path) -> tuple[datetime, datetime] | None:
    """First and last candle date. Feather and parquet through pyarrow alone: the supervisor
    calls this (memory estimate) and must stay small, so pandas is loaded only for json."""
    if path.name.endswith((".feather", ".parquet")):
        import pyarrow.feather as feather
        import pyarrow.parquet as parquet

        reader = feather if path.name.endswith(".feather") else parquet
        column = reader.read_table(path, columns=["date"]).column("date")
        dates = [column[0].as_py(), column[-1].as_py()] if len(column) else []
    else:
        from ..datacheck.candles import read_candle_file

        frame = read_candle_file(path, columns=["date"])["date"]
        dates = [frame.iloc[0].to_pydatetime(), frame.iloc[-1].to_pydatetime()] if len(frame) else []
    return (dates[0].astimezone(UTC), dates[1].astimezone(UTC)) if dates else None


def parse_day(text: str) -> datetime | None:
    return datetime.strptime(text, "%Y%m%d").replace(tzinfo=UTC) if text else None


def check_coverage(data_dir: Path, files: list[CandleFile], timerange: str, startup_candles: int) -> None:
    """Every file exists; main candles cover [start - startup, end), detail and informative [start, end).

    Raises DataError naming each pair, timeframe, candle type, the range asked for and the range on disk.
    """
    start_s, _, end_s = timerange.partition("-")
    start, end = parse_day(start_s), parse_day(end_s)
    problems = []
    for f in files:
        path = Path(data_dir) / f.relpath
        if not path.is_file():
            problems.append(f"{f.role} {f.describe()}: no data ({path} does not exist)")
            continue
        try:
            span = _span(path)
        except Exception as exc:  # noqa: BLE001 - truncated or not feather: named with the file
            problems.append(f"{f.role} {f.describe()}: {path} is unreadable ({type(exc).__name__}: {exc})")
            continue
        if span is None:
            problems.append(f"{f.role} {f.describe()}: {path} holds no candles")
            continue
        if not f.needs_range:
            continue
        step = timeframe_delta(f.timeframe)
        startup = startup_candles if f.is_main else 0
        need_from = start - step * startup if start else None
        need_to = end - step if end else None
        if (need_from and span[0] > need_from) or (need_to and span[1] < need_to):
            asked = f"{need_from or span[0]:%Y-%m-%d %H:%M} to {(need_to or span[1]) + step:%Y-%m-%d %H:%M}"
            plus = f" plus {startup} startup candles" if startup else ""
            problems.append(
                f"{f.role} {f.describe()}: asked for {asked} (TIMERANGE {timerange}{plus}), "
                f"available {span[0]:%Y-%m-%d %H:%M} to {span[1] + step:%Y-%m-%d %H:%M}"
            )
    if problems:
        raise DataError("data does not cover the run: " + "; ".join(problems))


def check_values(data_dir: Path, files: list[CandleFile], timerange: str, startup_candles: int) -> dict[str, dict]:
    """datacheck.check_candles over the rows each file contributes; per file its data quality."""
    from ..datacheck import check_candles

    start_s, _, end_s = timerange.partition("-")
    start, end = parse_day(start_s), parse_day(end_s)
    quality = {}
    for f in files:
        step = timeframe_delta(f.timeframe)
        # Freqtrade loads main and informative candles with the startup candles in their own
        # timeframe; detail candles, mark prices and funding rates from the range's start.
        startup = startup_candles if f.role in ("main", "informative") else 0
        window_start = start - step * startup if start else None
        q = check_candles(Path(data_dir) / f.relpath, candle_type=f.candle_type, start=window_start, end=end,
                          step=step)
        quality[f.relpath] = q.to_dict()
    return quality


def fingerprint(data_dir: Path, files: list[CandleFile]) -> tuple[str, dict[str, str]]:
    """SHA-256 of each file used, and one SHA-256 over all of them (path and digest)."""
    return data_fingerprint(data_dir, [f.relpath for f in files])


def data_fingerprint(data_dir: Path, relpaths: list[str]) -> tuple[str, dict[str, str]]:
    """The fingerprint of these files (relative to ``data_dir``): one SHA-256 over each
    file's path and SHA-256, and the per-file digests (``MISSING`` for a file that is not there:
    an informative file a run was allowed to go without).

    The run's summary lists the files it read (identity.data_files); fingerprinting those
    again tells whether the data of a finished run is still what it was.
    """
    per_file = {rel: sha256_file(Path(data_dir) / rel) if (Path(data_dir) / rel).is_file() else MISSING
                for rel in sorted(set(relpaths))}
    overall = hashlib.sha256("\n".join(f"{k} {v}" for k, v in sorted(per_file.items())).encode()).hexdigest()
    return overall, per_file
