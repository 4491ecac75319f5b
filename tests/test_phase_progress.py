"""engine.phase_progress gives Backtesting's progress callback exactly what rich's tracker gives it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from strategy_runner.engine import phase_progress
from strategy_runner.engine.offline import source_sha256


def test_the_checked_sources_are_the_installed_freqtrade():
    """Fails on a Freqtrade upgrade that touches the tracker or the code driving it: prove it
    again (this file), then update SOURCES."""
    changed = {name: source_sha256(func) for name, func in phase_progress._targets().items()
               if source_sha256(func) != phase_progress.SOURCES.get(name)}
    assert changed == {}


def _drive(make_tracker) -> list[tuple]:
    """Backtesting's own progress methods on the tracker, as a backtest calls them."""
    from freqtrade.enums import BacktestState
    from freqtrade.optimize.backtesting import Backtesting

    seen: list[tuple] = []
    bt = SimpleNamespace()
    bt.progress = make_tracker(ft_callback=lambda task: seen.append(
        (task.id, str(task.description), task.completed, task.total)))
    bt._progress_task_overall = bt.progress.add_task("Backtest", total=4)  # as init_backtest
    bt._progress_task = bt.progress.add_task("Backtesting", total=0)
    with bt.progress:
        Backtesting._set_progress_step(bt, BacktestState.DATALOAD, 3)
        for _ in range(3):
            Backtesting._increment_progress(bt)
        Backtesting._set_progress_step(bt, BacktestState.ANALYZE, 0)
        Backtesting._increment_progress(bt, 0.5)
        for state, total in ((BacktestState.CONVERT, 2), (BacktestState.BACKTEST, 1000)):
            Backtesting._set_progress_step(bt, state, total)
            for _ in range(total + 2):  # past the total, as a pair's last candle can
                Backtesting._increment_progress(bt)
    return seen


def test_the_callback_sees_what_it_sees_with_rich():
    stock = phase_progress._targets()["get_progress_tracker"]
    expected = _drive(stock)
    assert len(expected) > 1000
    assert _drive(phase_progress.get_progress_tracker) == expected


def test_installed_for_the_pinned_freqtrade_only(monkeypatch):
    import freqtrade
    from freqtrade.optimize import backtesting

    monkeypatch.setattr(backtesting, "get_progress_tracker", phase_progress._targets()["get_progress_tracker"])
    with monkeypatch.context() as m:
        m.setattr(freqtrade, "__version__", "2099.1")
        assert phase_progress.install() is False
    with monkeypatch.context() as m:
        m.setitem(phase_progress.SOURCES, "_increment_progress", "0" * 64)
        assert phase_progress.install() is False
    assert backtesting.get_progress_tracker is phase_progress._targets()["get_progress_tracker"]
    assert phase_progress.install() is True
    assert backtesting.get_progress_tracker is phase_progress.get_progress_tracker
    assert isinstance(backtesting.get_progress_tracker(ft_callback=print), phase_progress.CallbackProgress)


@pytest.mark.parametrize("kwargs", [{}, {"ft_callback": None}])
def test_without_a_callback_the_tracker_is_rich(kwargs):
    from freqtrade.util.rich_progress import CustomProgress

    assert isinstance(phase_progress.get_progress_tracker(**kwargs), CustomProgress)
