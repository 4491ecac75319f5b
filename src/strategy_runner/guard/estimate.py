"""Pre-flight: estimate a backtest's peak memory from the candles it will load, before loading any.

Freqtrade loads every pair, adds indicators and converts all of it to Python lists before
its loop starts; that is the peak, and it grows linearly with the number of candles
(FIELD-NOTES: "nothing processes one pair at a time"). So

    peak MiB ~= BASE_MB + MB_PER_100K_CANDLES * main candles / 100_000 (+ futures extras)

CALIBRATION: ``bench/memory_guard.py`` (EmaCrossSpot, sample candles for N pairs x 2024, 5m,
FAST_PRECISION on; peak = supervisor + worker tree RSS sampled 4x a second, as the runtime
guard sees it; 2 shared cores, load 2-6 from other jobs; 2026-11-22). First ``--sizes 1,2,4
--no-plain``, then the full run (8..17 pairs completed under 2 GiB). The measured points are
in CALIBRATION below; the least-squares line through all of them is 434.8 MiB + 79.1 MiB per
pair-year (105,408 candles in 2024) = 75.3 MiB per 100k candles, within 6 % of every point.
The slope flattens with more pairs (max_open_trades caps the trades, so results grow slower
than candles): FIELD-NOTES' single-point figures (~0.4 GiB + ~0.09 GiB per pair-year) fit
the small runs and overshoot the large ones. Stock Freqtrade's row-wise precision inference
(FAST_PRECISION=false) costs more (FIELD-NOTES: 30 pair-years = 3.05 GiB, ~10 % above this
line). A strategy with heavy indicators or informative pairs uses more too: the estimate is
a floor for the refusal (which keeps a margin) and the runtime guard catches the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..engine.data import needed_files, parse_day, timeframe_delta

#: (pairs, days of 5m candles, peak MiB measured) by bench/memory_guard.py.
CALIBRATION: tuple[tuple[int, int, float], ...] = (
    (1, 366, 488.7), (2, 366, 587.4), (4, 366, 767.7), (8, 366, 1104.2), (13, 366, 1464.3), (15, 366, 1621.2),
    (17, 366, 1771.1),
)
BASE_MB = 435.0  # imports, Freqtrade objects, the supervisor
MB_PER_100K_CANDLES = 75.3
#: Futures runs also hold 1h mark candles and funding rates per pair (two hourly series:
#: a sixth as many rows as 5m candles). Not calibrated separately: counted like main candles.
FUTURES_EXTRA_ROW_WEIGHT = 1.0
#: Refuse only when the estimate exceeds the limit by this factor: the estimate is rough,
#: a false refusal costs a run, and the runtime guard stops what the estimate missed.
REFUSE_FACTOR = 1.25


@dataclass(frozen=True)
class MemoryEstimate:
    mb: float
    pairs: int
    main_candles: int
    extra_rows: int
    days: float

    @property
    def pair_years(self) -> float:
        return self.pairs * self.days / 365.0

    def describe(self) -> str:
        return (f"~{self.mb:.0f} MiB for {self.pairs} pair(s) x {self.days:.0f} days "
                f"({self.main_candles:,} candles, {self.pair_years:.1f} pair-years)")


def _file_span(path: Path) -> tuple[datetime, datetime] | None:
    from ..engine.data import _span

    try:
        return _span(path)
    except Exception:  # noqa: BLE001 - a missing or odd file is the data check's business
        return None


def estimate_peak(
    pairs: list[str] | tuple[str, ...], timeframe: str, timerange: str, trading_mode: str, data_dir: Path,
    timeframe_detail: str | None = None, data_format: str = "feather",
) -> MemoryEstimate:
    """Estimate from the range asked for; open ends are closed with the data files' own span
    (only their date column is read). ``timeframe_detail`` candles (the config's) are held
    too and counted like main candles; informative series are not known before the worker."""
    start_s, _, end_s = timerange.partition("-")
    start, end = parse_day(start_s), parse_day(end_s)
    main = extra = 0
    days_max = 0.0
    files = needed_files(list(pairs), timeframe, trading_mode, data_format)
    if timeframe_detail:
        files += [f for f in needed_files(list(pairs), timeframe_detail, trading_mode, data_format) if f.is_main]
    for f in files:
        step = timeframe_delta(f.timeframe)
        lo, hi = start, end
        if lo is None or hi is None:
            span = _file_span(Path(data_dir) / f.relpath)
            if span is None:
                continue
            lo = lo or span[0]
            hi = hi or span[1] + step
        if hi <= lo:
            continue
        if f.is_main:
            main += int((hi - lo) / step)
            days_max = max(days_max, (hi - lo).total_seconds() / 86400)
        else:  # 1h mark candles, 8-hourly funding rates (read as 1h by Freqtrade)
            extra += int((hi - lo) / timeframe_delta("1h"))
    mb = BASE_MB + MB_PER_100K_CANDLES * (main + FUTURES_EXTRA_ROW_WEIGHT * extra) / 100_000
    return MemoryEstimate(mb=mb, pairs=len(pairs), main_candles=main, extra_rows=extra, days=days_max)


def refuses(estimate: MemoryEstimate, limit_mb: float) -> bool:
    """Clearly over: more than REFUSE_FACTOR times the limit."""
    return estimate.mb > REFUSE_FACTOR * limit_mb


def advice(estimate: MemoryEstimate, limit_mb: float) -> str:
    """What to change so the run fits under ``limit_mb``."""
    per_pair = (estimate.mb - BASE_MB) / max(estimate.pairs, 1)
    room = max(limit_mb - BASE_MB, 0.0)
    fit_pairs = int(room // per_pair) if per_pair > 0 else estimate.pairs
    fit_days = int(estimate.days * room / (estimate.mb - BASE_MB)) if estimate.mb > BASE_MB else 0
    return (
        f"run at most {fit_pairs} pair(s) over this range, or a range of at most ~{fit_days} days for these pairs, "
        f"or give the task more memory (about {estimate.mb * 1.15:.0f} MiB: ECS task memory / MEMORY_LIMIT_MB)"
    )
