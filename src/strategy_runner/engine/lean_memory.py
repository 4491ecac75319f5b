"""Backtest in about half of Freqtrade's memory: the same loop over the same rows, held compactly.

Before its loop Freqtrade holds, for every pair at once: the raw candles (kept for the
result's market change), the analyzed frame in the dataprovider cache (for strategy
callbacks), a trimmed copy of it, a trimmed copy of the indicator frame (read only for the
first and last date) and the loop's rows as Python lists of Python objects
(``df[HEADERS].values.tolist()``: about 450 bytes a candle, the largest of them all). Here:

- the rows are a ``CompactRows`` sequence over the trimmed analyzed frame. A row is made
  on first access, CHUNK rows at a time, by Freqtrade's own conversion steps (copy, signal
  shift, head drop, ``values.tolist()``), so every value and Python type is the stock one.
  The loop reads rows in date order: each chunk is converted once;
- when a strategy callback can read the analyzed frames during the loop, the rows are a
  copy-on-write view of the frame the dataprovider holds (no copy, and like the stock lists
  unaffected by later writes to it). When no strategy code runs in the loop at all
  (``no_code_in_loop``), the dataprovider's frames are released before it and the rows keep
  only their own columns, in parts dropped once the loop has read past them;
- the trimmed copies are not made (the indicator frames are trimmed as a date column);
- each pair's raw candles are cut to date and close (what the statistics and the
  market-change export read) as soon as its indicators are computed;
- freed memory is handed back to the OS between phases (glibc's heap and pyarrow's pool keep
  it otherwise), the phases after the loop included;
- ``validate_row`` compares a row's date as integer nanoseconds (``Timestamp.value``): the
  stock comparison of a pandas Timestamp with the loop's datetime costs ~1.6 µs, once per
  pair and candle (~1.5 s at 10 pair-years).

Installed on the runner's path only (engine.backtest), for the pinned Freqtrade, and only
when every function this replaces or relies on has the source it was checked against
(SOURCES); otherwise Freqtrade's own path runs, with a warning. tests/test_lean_memory.py
proves the rows and the results identical to the stock path's.
"""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any

from pandas import DataFrame, Timestamp

from ..logs import get_logger
from .offline import unproven

log = get_logger(__name__)

#: Rows converted at a time. A chunk of lists lives per pair (~450 bytes a row); smaller
#: chunks cost more conversion calls (a few ms each).
CHUNK = 2048
#: Generation-1 collections between two full ones (CPython's default is 10): see install.
FULL_COLLECTION_EVERY = 100
#: The columns of the raw candles read after the indicators: calculate_market_change and
#: combined_dataframes_with_rel_mean (the statistics and the market-change export).
STATS_COLUMNS = ["date", "close"]
#: Strategy methods Freqtrade calls only before the loop. A strategy class defining any
#: other function or property may run code during the loop (callbacks) that reads the
#: analyzed frames (dp.get_analyzed_dataframe).
BEFORE_LOOP_ONLY = frozenset({
    "populate_indicators", "populate_entry_trend", "populate_exit_trend", "populate_buy_trend",
    "populate_sell_trend", "informative_pairs", "bot_start",
})


def _prepared(rows: DataFrame, headers: list[str]) -> DataFrame:
    """Freqtrade's own steps from _get_ohlcv_as_lists (2026.9) but the last (``values.tolist()``),
    for consecutive trimmed rows: the signals shifted onto the next candle, the first row dropped."""
    from numpy import nan

    df_analyzed = rows.copy()
    for col in headers[5:]:
        tag_col = col in ("enter_tag", "exit_tag")
        if col in df_analyzed.columns:
            df_analyzed[col] = df_analyzed.loc[:, col].replace([nan], [0 if not tag_col else None]).shift(1)
        elif not df_analyzed.empty:
            df_analyzed[col] = 0 if not tag_col else None
    df_analyzed = df_analyzed.drop(df_analyzed.head(1).index)
    return df_analyzed[headers] if not df_analyzed.empty else df_analyzed


def _convert(rows: DataFrame, headers: list[str]) -> list[list[Any]]:
    """Freqtrade's conversion of consecutive trimmed rows, ``rows`` starting one row early (the
    shift moves each signal onto the next candle; that first row is dropped), exactly as on
    the whole trimmed frame."""
    df_analyzed = _prepared(rows, headers)
    return df_analyzed.values.tolist() if not df_analyzed.empty else []


class CompactRows(Sequence):
    """One pair's loop rows (a list in Freqtrade), made CHUNK at a time from its trimmed frame.

    The loop reads them forward (validate_row, _sync_pair_index) and the last row at the end
    (handle_left_open). Kept frames (``release`` false): each part is a view of the frame the
    dataprovider holds, converted by Freqtrade's steps when first read. Released frames: the
    signals are shifted once, on the whole frame as Freqtrade does, and only the rows' own
    columns are kept, in parts dropped once the loop has read past them (keeping the last),
    so what the loop has read makes room for its trades; a part then costs only
    ``values.tolist()`` (chunked shifting cost three times the stock conversion, profiled).
    Reading a dropped row raises."""

    def __init__(self, trimmed: DataFrame, headers: list[str], *, release: bool = False):
        self._release = release
        self._headers = headers
        self._len = max(len(trimmed) - 1, 0)
        self._parts: list[DataFrame | None]
        if release:  # own copies, so that dropping a part frees it
            columns = [c for c in headers if c in trimmed.columns]
            prepared = _prepared(trimmed[columns], headers)
            self._parts = [prepared.iloc[start:start + CHUNK].copy() for start in range(0, self._len, CHUNK)]
            del prepared
        else:  # CHUNK + 1 rows a part: each part's first row only carries the signals into the next
            self._parts = [trimmed.iloc[start:start + CHUNK + 1] for start in range(0, self._len, CHUNK)]
        # A slot per row (8 bytes), filled with the current part's rows only: the loop reads a
        # row per pair and candle, so reading one is a list lookup (profiled: a Python method
        # doing the bounds arithmetic cost a second at 10 pair-years).
        self._rows: list[list[Any] | None] = [None] * self._len
        self._current: int | None = None

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index):  # type: ignore[override]
        row = self._rows[index]  # IndexError and negative indexes as a list's
        if row is None or index.__class__ is slice:
            return self._load(index)
        return row

    def _load(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._len))]
        i = index + self._len if index < 0 else index
        part_no = i // CHUNK
        part = self._parts[part_no]
        if part is None:
            raise RuntimeError(f"row {i} was read and released already: the loop read backwards")
        if self._current is not None:  # one part's rows at a time
            start = self._current * CHUNK
            self._rows[start:start + CHUNK] = [None] * min(CHUNK, self._len - start)
        rows = part.values.tolist() if self._release else _convert(part, self._headers)
        self._rows[part_no * CHUNK:part_no * CHUNK + len(rows)] = rows
        self._current = part_no
        if self._release:
            for j in range(part_no - 1, -1, -1):
                if self._parts[j] is None:
                    break
                self._parts[j] = None
        return rows[i - part_no * CHUNK]


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
#: The loop's current time and its nanoseconds: one datetime serves every pair of a candle.
_now: list[Any] = [None, 0]


def validate_row(self: Any, data: dict, pair: str, row_index: int, current_time: datetime) -> Any:
    """Replaces ``Backtesting.validate_row``: the same row or None, comparing an aware row date
    with the loop's time in integer nanoseconds, exactly what the Timestamp comparison does
    (which costs ~1.6 µs; this ~0.3). Anything else is compared the stock way."""
    try:
        row = data[pair][row_index]
    except IndexError:  # missing data for the pair at the end
        return None
    date = row[0]  # DATE_IDX
    if date.__class__ is not Timestamp or date.tzinfo is None or current_time.__class__ is not datetime:
        return None if date > current_time else row
    if current_time is not _now[0]:
        _now[:] = current_time, (current_time - _EPOCH) // _MICROSECOND * 1000
    return None if date.value > _now[1] else row  # later: the pair's data starts later


def no_code_in_loop(backtesting: Any) -> bool:
    """True when no strategy code can run during the loop: every function or property the
    strategy's own classes define is one Freqtrade calls before it (BEFORE_LOOP_ONLY, or an
    @informative populate method), and the pairlist is not refreshed in the loop."""
    from freqtrade.strategy.interface import IStrategy

    if backtesting.dynamic_pairlist:
        return False
    for cls in type(backtesting.strategy).__mro__:
        if cls in IStrategy.__mro__:
            continue
        for name, value in vars(cls).items():
            code = callable(value) or isinstance(value, (property, classmethod, staticmethod))
            if code and name not in BEFORE_LOOP_ONLY and not hasattr(value, "_ft_informative"):
                return False
    return True


def _trimmed(backtesting: Any, df_analyzed: DataFrame) -> DataFrame | None:
    """The rows trim_dataframe keeps, as a view; None when that is not one slice of a frame
    with unique labels (the stock head drop is by label)."""
    from freqtrade.data.converter import trim_dataframe

    if not (df_analyzed.index.is_unique and df_analyzed.columns.is_unique):
        return None
    kept = trim_dataframe(df_analyzed[["date"]], backtesting.timerange, startup_candles=backtesting.required_startup)
    if kept.empty:
        return df_analyzed.iloc[0:0]
    positions = df_analyzed.index.get_indexer(kept.index)  # increasing: trimming keeps the order
    first, last = int(positions[0]), int(positions[-1])
    if last - first + 1 != len(positions):
        return None
    return df_analyzed.iloc[first:last + 1]


def _get_ohlcv_as_lists(self: Any, processed: dict[str, DataFrame]) -> dict[str, Sequence]:
    """Replaces ``Backtesting._get_ohlcv_as_lists``: the same signals, cache and rows."""
    from freqtrade.data.converter import trim_dataframe
    from freqtrade.optimize.backtesting import HEADERS, BacktestState

    release_frames = no_code_in_loop(self)
    log.info("loop rows held compactly", analyzed_frames="released: no strategy code runs in the loop"
             if release_frames else "kept for the strategy's callbacks")
    data: dict = {}
    self._set_progress_step(BacktestState.CONVERT, len(processed))
    for pair, pair_data in processed.items():
        self.check_abort()
        self._increment_progress()
        # (The stock "cleanup from prior runs" drop discards its own result: nothing to repeat.)
        df_analyzed = self.strategy.ft_advise_signals(pair_data, {"pair": pair})
        self.dataprovider._set_cached_df(pair, self.timeframe, df_analyzed, self.config["candle_type_def"])
        trimmed = _trimmed(self, df_analyzed)
        if trimmed is None:  # an unusual frame: the stock conversion, for this pair
            whole = trim_dataframe(df_analyzed, self.timerange, startup_candles=self.required_startup)
            data[pair] = _convert(whole, HEADERS)
        elif release_frames:  # only the rows' own columns stay
            data[pair] = CompactRows(trimmed, HEADERS, release=True)
            # Unread: before the loop get_analyzed_dataframe gives every pair an empty frame
            # (no slice index yet) and in it no strategy code runs. (What reset_backtest does.)
            self.dataprovider.clear_cache()
        else:  # a view: the dataprovider holds these frames anyway
            data[pair] = CompactRows(trimmed, HEADERS)
        # The stock code keeps the trimmed frame here; backtest_one_strategy never reads it
        # again (SOURCES): drop this pair's frames now ("gets cleared to optimize memory usage").
        processed[pair] = None
        del pair_data, df_analyzed, trimmed
    processed.clear()
    release_memory()
    return data


def _advise_all_indicators(strategy: Any, data: dict[str, DataFrame]) -> dict[str, DataFrame]:
    """IStrategy.advise_all_indicators (2026.9), cutting each pair's raw candles to
    STATS_COLUMNS once its indicators are computed (from a copy, as before)."""
    from freqtrade.strategy.strategy_validation import StrategyResultValidator

    res = {}
    for pair, pair_data in data.items():
        validator = StrategyResultValidator(pair_data, warn_only=strategy.disable_dataframe_checks)
        res[pair] = strategy.advise_indicators(pair_data.copy(), {"pair": pair}).copy()
        validator.assert_df(res[pair])
        data[pair] = pair_data[STATS_COLUMNS].copy()
        release_memory(collect=False)
    release_memory()
    return res


def trim_dataframes(preprocessed: dict[str, DataFrame], timerange: Any, startup_candles: int) -> dict[str, DataFrame]:
    """The stock trim_dataframes on the date column, cut to each pair's first and last date:
    backtest_one_strategy reads its result for the empty check and get_timerange (min and max
    date), and whole only to export signals."""
    from freqtrade.data.converter import converter

    trimmed = converter.trim_dataframes({pair: df[["date"]] for pair, df in preprocessed.items()}, timerange,
                                        startup_candles)
    return {pair: df.iloc[[df["date"].argmin(), df["date"].argmax()]] for pair, df in trimmed.items()}


def backtest_one_strategy(self: Any, strat: Any, data: dict[str, DataFrame], timerange: Any) -> Any:
    """Wraps ``Backtesting.backtest_one_strategy`` with the date-only trim (unless signals are
    exported) and, for a single strategy (another would need them whole), the raw-candle cut."""
    from freqtrade.data.converter import converter
    from freqtrade.optimize import backtesting
    from freqtrade.strategy.interface import IStrategy

    signals = self.config.get("export", "none") == "signals"
    cut = len(self.strategylist) == 1 and type(strat).advise_all_indicators is IStrategy.advise_all_indicators
    backtesting.trim_dataframes = converter.trim_dataframes if signals else trim_dataframes
    if cut:
        strat.advise_all_indicators = partial(_advise_all_indicators, strat)
    release_memory()  # what loading the candles left behind
    try:
        return _STOCK["backtest_one_strategy"](self, strat, data, timerange)
    finally:
        backtesting.trim_dataframes = converter.trim_dataframes
        if cut:
            del strat.advise_all_indicators
        # The loop is over: nothing reads the analyzed frames any more (the statistics read the
        # trades and the raw closes). Freqtrade's own reset_backtest clears them the same way.
        self.dataprovider.clear_cache()
        release_memory()


def _between_releases(stock: Any) -> Any:
    """``stock`` with release_memory after it: each phase after the loop (the wallet summary,
    the statistics, the export) would otherwise add its own peak to what the one before left
    behind. (Once between two phases: each release costs ~0.06 s at 10 pair-years.)"""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return stock(*args, **kwargs)
        finally:
            release_memory()

    wrapper.__wrapped__ = stock
    return wrapper


def release_memory(*, collect: bool = True) -> None:
    """Give freed memory back to the OS (after a garbage collection): RSS is what the memory
    limit counts, and neither glibc's heap nor pyarrow's pool (the candle files are read
    through it) returns freed pages by itself."""
    import pyarrow

    if collect:
        gc.collect()
    pyarrow.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


#: The stock methods, kept when installing.
_STOCK: dict[str, Any] = {}


def _targets() -> dict[str, Any]:
    """Every Freqtrade function this module replaces, copies or relies on, by name."""
    from freqtrade.data import metrics
    from freqtrade.data.converter import converter
    from freqtrade.data.dataprovider import DataProvider
    from freqtrade.data.history import history_utils
    from freqtrade.optimize import backtesting
    from freqtrade.optimize.optimize_reports import optimize_reports
    from freqtrade.strategy.interface import IStrategy

    bt = backtesting.Backtesting
    return {
        "_get_ohlcv_as_lists": _STOCK.get("_get_ohlcv_as_lists", bt._get_ohlcv_as_lists),  # replaced (_convert)
        "backtest_one_strategy": _STOCK.get("backtest_one_strategy", bt.backtest_one_strategy),  # wrapped
        "advise_all_indicators": IStrategy.advise_all_indicators,  # copied with the raw-candle cut
        "trim_dataframes": converter.trim_dataframes,  # run on the date column only
        "trim_dataframe": converter.trim_dataframe,  # the selection _trimmed reproduces
        "clear_cache": DataProvider.clear_cache,
        "get_analyzed_dataframe": DataProvider.get_analyzed_dataframe,  # the only reader of the cache
        "start": bt.start,  # the raw candles go to the statistics only
        "backtest": bt.backtest,
        "time_pair_generator": bt.time_pair_generator,  # how the loop reads the rows
        "validate_row": _STOCK.get("validate_row", bt.validate_row),  # replaced (Timestamp.value)
        "_sync_pair_index": bt._sync_pair_index,
        "handle_left_open": bt.handle_left_open,
        "generate_backtest_stats": optimize_reports.generate_backtest_stats,  # reads date and close
        "calculate_market_change": metrics.calculate_market_change,
        "combined_dataframes_with_rel_mean": metrics.combined_dataframes_with_rel_mean,
        "combine_dataframes_by_column": metrics.combine_dataframes_by_column,
        "get_timerange": history_utils.get_timerange,
    }


def _exports() -> dict[str, Any]:
    """The phases after the loop, called by their names in freqtrade.optimize.backtesting."""
    from freqtrade.optimize.optimize_reports import bt_storage, optimize_reports

    return {"convert_bt_wallet_collection": optimize_reports.convert_bt_wallet_collection,
            "generate_backtest_stats": optimize_reports.generate_backtest_stats,
            "store_backtest_results": bt_storage.store_backtest_results}


#: The stock sources this seam was proven against (freqtrade 2026.9).
SOURCES: dict[str, str] = {
    "_get_ohlcv_as_lists": "b8168aa844d5b3666ffb1ac3d8dc9839536efc58fa720213d21729d22a1d6e38",
    "backtest_one_strategy": "8560411419ff6a9eaeba1a29375d8c303627ee3e4846f58a93f2d8a61e6c59c9",
    "advise_all_indicators": "31bdd35cf599c35f2d314f0f4b9a29f1cf8d4689e4d8722d47c42b8211107907",
    "trim_dataframes": "ef92454b34afdcae28509a801545dc7db7715a31efd4e0227fabd4892852ada5",
    "trim_dataframe": "c4354afde418b3acce537cbb4aadbee86aca483b2182938ea4eced16ec85a5f0",
    "clear_cache": "5442026fb519c5eb3f729cd261cd1fdba15c04814af1ad1cb09092c64e1b0099",
    "get_analyzed_dataframe": "b3f20023eb1a1b035d65c7ea17fa15ab7781955a957c84345a24f890990f6e45",
    "start": "3ca00203a7b2f2ebf360e69566951de2c41a5fd8306b9ad398314ce67795330d",
    "backtest": "c65dbdd3427a758d2b7b3b9e5c113970cc39c94affadfde70d8e6a2ab9452fbf",
    "time_pair_generator": "abf3d1a360ab88f1f8d5a36a7d9ef3cfd6314eb8ea402b3a5de8ae9f11f303fc",
    "validate_row": "2f7a5f118100c99198b7eb1db08a8b6f2b948ffffda6b19e424da156b0796dca",
    "_sync_pair_index": "4a1779f9eb21d795c8e2ddcb94f4b1f9eb640c23bf94887b511a6f80a05d7cc6",
    "handle_left_open": "fdfa833e77f3167adb9b41c7c5c7d2cd84cf645353830d899bc45d31b0c8f173",
    "generate_backtest_stats": "13df2a66fdc6d1515ab9762eceb2b0a650412ecebe97829a67023f9ec1eca47f",
    "calculate_market_change": "c549741f970a06ab1f18d992b7fa9387a5c07354b703165b29bd2327ea92900e",
    "combined_dataframes_with_rel_mean": "26c5b9ef63cd8dbeedf03a4fe72a18e978b265af2b3560f4dc1f540922823ad8",
    "combine_dataframes_by_column": "2e0a2d986505699b8dd335dac27166dae3c93e6006f058b232ea3f3d4fdba84f",
    "get_timerange": "0c5a95356ff9867bcecc4132695d87e04ebd7cb9885de9a0982c0d7a06f3a8f5",
}


def _refusal(backtesting: Any) -> str | None:
    """Why the compact path must not be installed here, or None."""
    from freqtrade.data.converter import converter

    if reason := unproven(SOURCES, _targets):
        return reason
    if backtesting.trim_dataframes is not converter.trim_dataframes:
        return "freqtrade.optimize.backtesting.trim_dataframes is not the stock function"
    if any(stock not in (getattr(backtesting, name), getattr(getattr(backtesting, name), "__wrapped__", None))
           for name, stock in _exports().items()):
        return "freqtrade.optimize.backtesting's statistics or export is not the stock function"
    return None


def install() -> bool:
    """Make Backtesting use the compact path. False (stock path kept) on any mismatch."""
    from freqtrade.optimize import backtesting

    if reason := _refusal(backtesting):
        log.warning("lean memory path not installed; using freqtrade's own", reason=reason)
        return False
    for name in ("_get_ohlcv_as_lists", "backtest_one_strategy", "validate_row"):
        _STOCK.setdefault(name, getattr(backtesting.Backtesting, name))
    backtesting.Backtesting._get_ohlcv_as_lists = _get_ohlcv_as_lists
    backtesting.Backtesting.backtest_one_strategy = backtest_one_strategy
    backtesting.Backtesting.validate_row = validate_row
    for name, stock in _exports().items():
        setattr(backtesting, name, _between_releases(stock))
    # Millions of objects from the imports would be walked by every collection release_memory
    # makes (measured: ~1.7 s a short run); frozen, a collection walks only the backtest's own.
    gc.freeze()
    # Frozen, they no longer count as the long-lived population a full collection waits to grow
    # by a quarter, so one came every 10 generation-1 ones, each walking the loop's trades and wallet
    # history: 79 full collections, 3.3 s at 10 pair-years (gc.callbacks), against Freqtrade's
    # 4. At 10x the interval: 14-17 and 0.8-1.0 s. Rows and frames are freed by reference count.
    gen0, gen1, _ = gc.get_threshold()
    gc.set_threshold(gen0, gen1, FULL_COLLECTION_EVERY)
    log.info("compact loop rows installed (engine.lean_memory)")
    return True
