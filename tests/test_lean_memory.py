"""engine.lean_memory gives Freqtrade's loop exactly the rows, and the run exactly the result,
of Freqtrade's own path."""

from __future__ import annotations

import gc
import json
import math
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from strategy_runner.engine import lean_memory
from strategy_runner.engine.offline import source_sha256
from tests.conftest import ROOT

HEADERS = ["date", "open", "high", "low", "close", "enter_long", "exit_long", "enter_short", "exit_short",
           "enter_tag", "exit_tag"]


# --- the seam --------------------------------------------------------------------------------

def test_the_checked_sources_are_the_installed_freqtrade():
    """Fails on a Freqtrade upgrade that touches anything the compact path replaces or relies on:
    prove it again (this file), then update SOURCES."""
    changed = {name: source_sha256(func) for name, func in lean_memory._targets().items()
               if source_sha256(func) != lean_memory.SOURCES.get(name)}
    assert changed == {}
    from freqtrade.optimize.backtesting import HEADERS as FREQTRADE_HEADERS

    assert FREQTRADE_HEADERS == HEADERS


@pytest.fixture
def stock_backtesting(monkeypatch):
    """Freqtrade's own Backtesting and module functions, restored after the test."""
    from freqtrade.optimize import backtesting

    stock = lean_memory._targets()
    monkeypatch.setattr(backtesting.Backtesting, "_get_ohlcv_as_lists", stock["_get_ohlcv_as_lists"])
    monkeypatch.setattr(backtesting.Backtesting, "backtest_one_strategy", stock["backtest_one_strategy"])
    monkeypatch.setattr(backtesting.Backtesting, "validate_row", stock["validate_row"])
    for name, func in lean_memory._exports().items():
        monkeypatch.setattr(backtesting, name, func)
    return backtesting


def test_install_patches_and_refuses_another_freqtrade(stock_backtesting, monkeypatch):
    import freqtrade

    bt = stock_backtesting.Backtesting
    stock_lists = bt._get_ohlcv_as_lists
    with monkeypatch.context() as m:
        m.setattr(freqtrade, "__version__", "2099.1")
        assert lean_memory.install() is False
        assert bt._get_ohlcv_as_lists is stock_lists
    with monkeypatch.context() as m:
        m.setitem(lean_memory.SOURCES, "backtest", "0" * 64)  # the stock loop changed
        assert lean_memory.install() is False
        assert bt._get_ohlcv_as_lists is stock_lists
    with monkeypatch.context() as m:
        m.setattr(stock_backtesting, "store_backtest_results", lambda *a, **k: None)  # someone else's patch
        assert lean_memory.install() is False
        assert bt._get_ohlcv_as_lists is stock_lists
    assert lean_memory.install() is True
    assert bt._get_ohlcv_as_lists is lean_memory._get_ohlcv_as_lists
    assert bt.validate_row is lean_memory.validate_row
    assert gc.get_threshold()[2] == lean_memory.FULL_COLLECTION_EVERY
    assert stock_backtesting.store_backtest_results.__wrapped__ is lean_memory._exports()["store_backtest_results"]
    assert lean_memory.install() is True  # twice in one process: still wraps the stock functions once
    assert stock_backtesting.store_backtest_results.__wrapped__ is lean_memory._exports()["store_backtest_results"]


# --- the rows, value by value and type by type -----------------------------------------------

class _Strategy:
    def ft_advise_signals(self, dataframe, metadata):
        return dataframe


class _DataProvider:
    def __init__(self):
        self.cached: dict[str, pd.DataFrame] = {}

    def _set_cached_df(self, pair, timeframe, dataframe, candle_type):
        self.cached[pair] = dataframe

    def clear_cache(self):
        self.cached = {}


class _Backtesting:
    """What _get_ohlcv_as_lists reads of a Backtesting."""

    def __init__(self, startup: int):
        from freqtrade.configuration import TimeRange

        self.strategy = _Strategy()
        self.dataprovider = _DataProvider()
        self.timeframe = "5m"
        self.config = {"candle_type_def": "spot"}
        self.timerange = TimeRange.parse_timerange("20240101-20240120")
        self.required_startup = startup
        self.dynamic_pairlist = False

    def _set_progress_step(self, *_):
        pass

    def _increment_progress(self, *_):
        pass

    def check_abort(self):
        pass


def _frame(rows: int, start: str = "2023-12-31 22:00", seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, rows)))
    return pd.DataFrame({
        "date": pd.date_range(start, periods=rows, freq="5min", tz="UTC", unit="ms"),
        "open": close * 0.999, "high": close * 1.01, "low": close * 0.99, "close": close,
        "volume": rng.uniform(0, 10, rows), "ema": pd.Series(close).ewm(span=12).mean().to_numpy(),
    })


def _signals(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    up = frame["close"] > frame["ema"]
    if kind == "float with NaN (loc assignment)":
        frame.loc[up, "enter_long"] = 1
        frame.loc[~up, "exit_long"] = 1
    elif kind == "int":
        frame["enter_long"] = up.astype(int)
        frame["exit_long"] = (~up).astype(int)
    elif kind == "bool":
        frame["enter_long"] = up
        frame["exit_long"] = ~up
    elif kind == "shorts and string tags":
        frame.loc[up, ["enter_long", "enter_tag"]] = (1, "cross up")
        frame.loc[~up, ["enter_short", "enter_tag"]] = (1, "cross down")
        frame.loc[~up, "exit_long"] = 1
        frame.loc[up, ["exit_short", "exit_tag"]] = (1, "back up")
    elif kind == "object tags with None":
        frame["enter_long"] = up.astype(float)
        frame["enter_tag"] = pd.Series([None if u else "t" for u in up], dtype=object)
    return frame


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, pd.Timestamp):
        return a == b and a.unit == b.unit and str(a.tz) == str(b.tz)
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def _assert_same_rows(got: Any, expected: list) -> None:
    assert len(got) == len(expected)
    got_rows = [got[i] for i in range(len(got))]
    assert got[-1] == expected[-1] if expected else True
    for i, (g, e) in enumerate(zip(got_rows, expected, strict=True)):
        assert len(g) == len(e) and all(_same(x, y) for x, y in zip(g, e, strict=True)), (i, g, e)


SIGNALS = ["float with NaN (loc assignment)", "int", "bool", "shorts and string tags", "object tags with None"]


@pytest.mark.parametrize("release", [False, True], ids=["frames kept", "frames released"])
@pytest.mark.parametrize("kind", SIGNALS)
def test_rows_equal_the_stock_conversion(kind, release, monkeypatch):
    # 19 days of 5m after 2 hours of startup: several chunks and a partial one.
    frames = {"A/USDT": _signals(_frame(5500), kind), "B/USDT": _signals(_frame(5400, seed=1), kind)}
    stock_bt, lean_bt = _Backtesting(24), _Backtesting(24)
    expected = lean_memory._targets()["_get_ohlcv_as_lists"](stock_bt, {p: f.copy() for p, f in frames.items()})
    monkeypatch.setattr(lean_memory, "no_code_in_loop", lambda _bt: release)
    got = lean_memory._get_ohlcv_as_lists(lean_bt, {p: f.copy() for p, f in frames.items()})
    assert list(got) == list(expected)
    for pair in frames:
        assert isinstance(got[pair], lean_memory.CompactRows)
        assert len(expected[pair]) > 2 * lean_memory.CHUNK
        _assert_same_rows(got[pair], expected[pair])
    # The dataprovider is given the same analyzed frames; released ones are dropped before the loop.
    assert set(lean_bt.dataprovider.cached) == (set() if release else set(frames))
    for pair in lean_bt.dataprovider.cached:
        pd.testing.assert_frame_equal(lean_bt.dataprovider.cached[pair], stock_bt.dataprovider.cached[pair])


@pytest.mark.parametrize("name,frames", [
    ("fewer rows than the startup", {"A/USDT": _signals(_frame(10), "int")}),
    ("one row left", {"A/USDT": _signals(_frame(25), "int")}),
    ("no rows", {"A/USDT": _signals(_frame(0), "int")}),
    ("a duplicate index label (stock conversion kept)",
     {"A/USDT": _signals(_frame(3000), "int").set_axis([0] * 2 + list(range(2, 3000)))}),
    ("a pair starting late", {"A/USDT": _signals(_frame(3000, start="2024-01-05"), "bool")}),
])
def test_edge_frames_equal_the_stock_conversion(name, frames):
    expected = lean_memory._targets()["_get_ohlcv_as_lists"](_Backtesting(24), {p: f.copy() for p, f in frames.items()})
    got = lean_memory._get_ohlcv_as_lists(_Backtesting(24), {p: f.copy() for p, f in frames.items()})
    for pair in frames:
        _assert_same_rows(got[pair], expected[pair])
        assert bool(got[pair]) == bool(expected[pair])


@pytest.mark.parametrize("release", [False, True], ids=["frames kept", "frames released"])
def test_validate_row_gives_the_stock_answer_for_every_row_and_time(release, monkeypatch):
    """A pair starting late and ending early: before, at and between its candles, past its end."""
    from freqtrade.configuration import TimeRange

    frames = {"A/USDT": _signals(_frame(3000, start="2024-01-02 10:00"), "shorts and string tags"),
              "B/USDT": _signals(_frame(3000, start="2024-01-02 10:00", seed=1).set_axis([0] * 2 + list(range(2, 3000))),
                                 "int")}  # a duplicate label: stock lists, the stock comparison
    monkeypatch.setattr(lean_memory, "no_code_in_loop", lambda _bt: release)
    bt = _Backtesting(24)
    bt.timerange = TimeRange.parse_timerange("20240101-20240120")
    data = lean_memory._get_ohlcv_as_lists(bt, {p: f.copy() for p, f in frames.items()})
    assert isinstance(data["A/USDT"], lean_memory.CompactRows) and isinstance(data["B/USDT"], list)
    stock = lean_memory._targets()["validate_row"]
    dates = pd.date_range("2024-01-02 09:00", "2024-01-13", freq="150s", tz="UTC").to_pydatetime()
    for pair, rows in data.items():
        for row_index in range(0, len(rows) + 2, 7):
            for current_time in dates[row_index // 2::97]:  # past and ahead of the row's own date
                got = lean_memory.validate_row(bt, data, pair, row_index, current_time)
                assert got == stock(bt, data, pair, row_index, current_time), (pair, row_index, current_time)


def test_validate_row_compares_other_dates_the_stock_way():
    """Naive dates (the stock comparison raises), a datetime subclass, sub-microsecond dates."""
    from datetime import datetime, timezone

    stock = lean_memory._targets()["validate_row"]
    aware = pd.Timestamp("2024-01-01 00:05:00.0000001", tz="UTC")
    now = datetime(2024, 1, 1, 0, 5, tzinfo=timezone.utc)
    for date, current_time in [(aware, now), (aware, pd.Timestamp(now)), (aware.floor("min"), now),
                               (aware.tz_convert("Asia/Tokyo"), now), (aware.floor("us").to_pydatetime(), now)]:
        data = {"A": [[date, 1.0]]}
        assert (lean_memory.validate_row(None, data, "A", 0, current_time)
                == stock(None, data, "A", 0, current_time)), (date, current_time)
    with pytest.raises(TypeError):
        lean_memory.validate_row(None, {"A": [[aware.tz_localize(None), 1.0]]}, "A", 0, now)


def test_released_rows_are_read_forward_and_a_backward_read_fails_loudly():
    frame = _signals(_frame(3 * lean_memory.CHUNK + 10), "int")
    rows = lean_memory.CompactRows(frame, HEADERS, release=True)
    last = rows[len(rows) - 1]
    assert rows[-1] is last  # handle_left_open reads the last row after the loop
    with pytest.raises(RuntimeError, match="read backwards"):
        rows[0]
    with pytest.raises(IndexError):
        rows[len(rows)]


def test_rows_are_a_snapshot_like_the_stock_lists():
    """A later write to the analyzed frame (a strategy keeping a reference) does not reach them."""
    frame = _signals(_frame(500), "int")
    rows = lean_memory.CompactRows(frame.iloc[24:], HEADERS)
    before = rows[100][4]
    frame.loc[:, "close"] = 0.0
    assert rows[100][4] == before != 0.0


def test_strategy_code_in_the_loop_keeps_the_analyzed_frames():
    from freqtrade.strategy import IStrategy, informative

    class Plain(IStrategy):
        def populate_indicators(self, dataframe, metadata):
            return dataframe

        @informative("1h")
        def populate_indicators_1h(self, dataframe, metadata):
            return dataframe

    class Callback(Plain):
        def custom_exit(self, pair, trade, current_time, current_rate, current_profit, **kwargs):
            return None

    class Helper(Plain):
        def helper(self):  # called from anywhere: it might read the frames
            return None

    def bt(cls, dynamic=False):
        return type("B", (), {"strategy": cls.__new__(cls), "dynamic_pairlist": dynamic})()

    assert lean_memory.no_code_in_loop(bt(Plain))
    assert not lean_memory.no_code_in_loop(bt(Callback))
    assert not lean_memory.no_code_in_loop(bt(Helper))
    assert not lean_memory.no_code_in_loop(bt(Plain, dynamic=True))


# --- real backtests: byte-identical results --------------------------------------------------

CALLBACK_STRATEGY = '''
"""EmaCrossSpot with an exit callback that reads the analyzed frame during the loop."""
import sys
sys.path.insert(0, {strategies!r})
from EmaCrossSpot import EmaCrossSpot


class EmaCrossCallback(EmaCrossSpot):
    def custom_exit(self, pair, trade, current_time, current_rate, current_profit, **kwargs):
        frame, _ = self.dp.get_analyzed_dataframe(pair, self.timeframe)
        last = frame.iloc[-1]
        if current_profit > 0.005 and last["close"] < last["ema_fast"]:
            return "below fast ema"
        return None
'''

SCENARIOS = {
    "spot": {"STRATEGY": "EmaCrossSpot", "PAIRS": "BTC/USDT,ETH/USDT,SOL/USDT"},
    "futures with shorts": {"STRATEGY": "EmaCrossFutures", "PAIRS": "BTC/USDT:USDT,ETH/USDT:USDT"},
    "informative pairs": {"STRATEGY": "DecoratedInformative", "PAIRS": "ETH/USDT,SOL/USDT",
                          "STRATEGIES_DIR": str(ROOT / "tests" / "strategies")},
    "a callback reading the analyzed frame": {"STRATEGY": "EmaCrossCallback", "PAIRS": "BTC/USDT,ETH/USDT"},
}


def _drive(env: dict[str, str], mode: str, cwd: Path) -> tuple[Path, dict, str]:
    env = {**env, "RUN_ID": f"lean-{mode}", "TRACKING": "false", "RESULT_CACHE": "false"}
    proc = subprocess.run([sys.executable, "-m", "tests.lean_memory_driver", mode], env={**env, "PYTHONPATH": str(ROOT)},
                          cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    run_dir = Path(env["RUNS_DIR"]) / env["RUN_ID"]
    return run_dir, json.loads(proc.stdout.strip().splitlines()[-1]), (run_dir / "run.log").read_text()


def _zip_content(run_dir: Path, name: str) -> dict[str, Any]:
    """The Freqtrade archive's files, without what names the run: its time and directory."""
    out: dict[str, Any] = {}
    with zipfile.ZipFile(run_dir / name) as z:
        for entry in z.namelist():
            key = re.sub(r"^backtest-result-\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d", "", entry)
            data = z.read(entry).replace(run_dir.name.encode(), b"<run>")
            if entry.endswith(".json") and not entry.endswith("_config.json"):
                stats = json.loads(data)
                for strategy in stats.get("strategy", {}).values():
                    for field in ("backtest_run_start_ts", "backtest_run_end_ts"):
                        strategy.pop(field, None)
                for meta in stats.get("metadata", {}).values():
                    meta.pop("backtest_start_time", None)
                data = json.dumps(stats, sort_keys=True).encode()
            out[key] = data
    return out


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_a_backtest_gives_byte_identical_results_with_and_without(scenario, run_env, tmp_path):
    env = {**run_env, "TIMERANGE": "20240801-20241001", **SCENARIOS[scenario]}
    if scenario.startswith("a callback"):
        (tmp_path / "strategies").mkdir()
        (tmp_path / "strategies" / "EmaCrossCallback.py").write_text(
            CALLBACK_STRATEGY.format(strategies=str(ROOT / "strategies")))
        env["STRATEGIES_DIR"] = str(tmp_path / "strategies")
    stock_dir, stock, stock_log = _drive(env, "stock", tmp_path)
    lean_dir, lean, lean_log = _drive(env, "lean", tmp_path)
    # The compact path really ran in one and not the other, in the expected mode.
    assert "loop rows held compactly" in lean_log and "loop rows held compactly" not in stock_log
    released = scenario in ("spot", "informative pairs")
    assert ("released: no strategy code runs in the loop" in lean_log) is released
    stock_trades = (stock_dir / "trades.csv").read_bytes()
    assert stock_trades.count(b"\n") > 20  # trades happened, so there is something to compare
    if scenario.startswith("futures"):
        assert b",True," in stock_trades  # shorts among them
    if scenario.startswith("a callback"):
        assert b"below fast ema" in stock_trades  # the callback read the frame and decided exits
    assert (lean_dir / "trades.csv").read_bytes() == stock_trades
    stock_zip, lean_zip = stock.pop("freqtrade_zip"), lean.pop("freqtrade_zip")
    assert json.dumps(lean, sort_keys=True) == json.dumps(stock, sort_keys=True)
    assert (lean_dir / "freqtrade-report.txt").read_text() == (stock_dir / "freqtrade-report.txt").read_text()
    # The archive: statistics, market change (from the cut raw candles), wallet, config, strategy.
    assert _zip_content(lean_dir, lean_zip) == _zip_content(stock_dir, stock_zip)
