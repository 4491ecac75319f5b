"""Pre-flight: estimate a backtest's peak memory from the candles it will load, before loading any.

With engine.lean_memory the loop's rows are held compactly, so what grows with the candles
is the indicator frames (every pair's at once, before the signals), then the rows' own
columns; below that sits a floor of fixed costs: the supervisor, the worker's imports and
Freqtrade's objects. So

    peak MiB ~= max(FLOOR_MB + beside, BASE_MB + MB_PER_100K_CANDLES * main candles / 100_000 (+ futures extras))

where ``beside`` is what a tracking process adds beside the worker's start-up: the mlflow
library's child when tracking goes through it (a new sqlite store, other stores; measured:
a first run's 2 pair-year peak 602 MiB against 458 with the store written directly), else 0.

CALIBRATION: ``bench/memory_guard.py --sizes 10,20 --plain-sizes 10,20``, then ``--sizes 2,100
--no-plain`` and ``--sizes 44 --no-plain`` (EmaCrossSpot, sample candles for N pairs x 2024,
5m, FAST_PRECISION on, the embedded MLflow store created beforehand; peak = the status item's
peak_memory_mb, supervisor + worker tree RSS sampled 4x a second, as the runtime guard sees
it; 2 shared cores, load 0.6-1.1; 2026-12-01 22:26-22:36 UTC, after the loop changes of the
performance issue). The least-squares line through 10, 20, 44 and 100 pair-years is 420.9 MiB
+ 12.5 MiB per pair-year (105,408 candles in 2024) = 11.87 MiB per 100k candles; with the
floor at 460 MiB (a 2 pair-year run: 444-463 MiB; the first run in a directory more) the
model is within 4 % of every point. Not covered by this line, and above it: a strategy
whose callbacks may read the analyzed frames (they stay in memory through the loop: ~14 MiB
more per pair-year, more with heavy indicators), informative pairs, Freqtrade's own
path (lean_memory not installed, as after an upgrade: ~60 MiB per pair-year more) and stock
precision inference (FAST_PRECISION=false). The estimate is a floor for the refusal (which
keeps a margin) and the runtime guard catches the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..engine.data import needed_files, parse_day, timeframe_delta

#: (pairs, days of 5m candles, peak MiB measured) by bench/memory_guard.py.
CALIBRATION: tuple[tuple[int, int, float], ...] = (
    (2, 366, 444.0), (10, 366, 552.9), (20, 366, 672.2), (44, 366, 958.7), (100, 366, 1676.5),
)
FLOOR_MB = 460.0  # the supervisor and the worker's start-up, together
BASE_MB = 420.9  # where the line through the larger runs starts: imports, Freqtrade objects, the supervisor
MB_PER_100K_CANDLES = 11.87
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
    timeframe_detail: str | None = None, data_format: str = "feather", beside_mb: float = 0.0,
) -> MemoryEstimate:
    """Estimate from the range asked for; open ends are closed with the data files' own span
    (only their date column is read). ``timeframe_detail`` candles (the config's) are held
    too and counted like main candles; informative series are not known before the worker.
    ``beside_mb`` (the mlflow library's start step, when tracking uses it) raises the floor
    only: it runs beside the worker's start-up and is gone before a large run's peak."""
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
    mb = max(FLOOR_MB + beside_mb, BASE_MB + MB_PER_100K_CANDLES * (main + FUTURES_EXTRA_ROW_WEIGHT * extra) / 100_000)
    return MemoryEstimate(mb=mb, pairs=len(pairs), main_candles=main, extra_rows=extra, days=days_max)


def refuses(estimate: MemoryEstimate, limit_mb: float) -> bool:
    """Clearly over: more than REFUSE_FACTOR times the limit."""
    return estimate.mb > REFUSE_FACTOR * limit_mb


def advice(estimate: MemoryEstimate, limit_mb: float) -> str:
    """What to change so the run fits under ``limit_mb``."""
    more = f"give the task more memory (about {estimate.mb * 1.15:.0f} MiB: ECS task memory / MEMORY_LIMIT_MB)"
    if limit_mb < FLOOR_MB:
        return (f"no backtest fits under {limit_mb:.0f} MiB: the fixed costs alone (supervisor, imports) "
                f"are ~{FLOOR_MB:.0f} MiB, so at most 0 pair(s) over any range; {more}")
    per_pair = (estimate.mb - BASE_MB) / max(estimate.pairs, 1)
    room = max(limit_mb - BASE_MB, 0.0)
    fit_pairs = int(room // per_pair) if per_pair > 0 else estimate.pairs
    fit_days = int(estimate.days * room / (estimate.mb - BASE_MB)) if estimate.mb > BASE_MB else 0
    return (
        f"run at most {fit_pairs} pair(s) over this range, or a range of at most ~{fit_days} days for these pairs, "
        f"or {more}"
    )
