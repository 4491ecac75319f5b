"""Freqtrade's backtest progress for the runner: the same tasks and callbacks, without rich.

Given a progress callback, Freqtrade makes a rich ``Progress`` with its display disabled and
calls ``update`` on it for every candle, then the callback with ``tasks[task_id]``. Each of
those takes rich's lock, records a speed sample and builds the task list: ~5 µs a candle,
~0.5 s at 10 pair-years, for a bar nobody sees. ``CallbackProgress`` keeps only the tasks'
description, total and completed count, updated as rich does, and calls the callback after
every update, as ``CustomProgress`` does.

Installed on the runner's path only (engine.backtest), for the pinned Freqtrade, when the
code that makes and drives the tracker has the source it was checked against (SOURCES);
tests/test_phase_progress.py proves the callback sees what it sees with rich.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from ..logs import get_logger
from .offline import unproven

log = get_logger(__name__)


class CallbackProgress:
    """The part of ``rich_progress.CustomProgress`` Backtesting uses, for a callback."""

    def __init__(self, ft_callback: Callable[[Any], None]):
        self._callback = ft_callback
        self.tasks: list[SimpleNamespace] = []

    def add_task(self, description: str, total: float | None = 100.0, completed: float = 0, **_: Any) -> int:
        self.tasks.append(SimpleNamespace(id=len(self.tasks), description=description, total=total,
                                          completed=completed))
        return len(self.tasks) - 1

    def update(self, task_id: int, *, total: float | None = None, completed: float | None = None,
               advance: float | None = None, description: str | None = None, **_: Any) -> None:
        task = self.tasks[task_id]
        if total is not None:
            task.total = total
        if advance is not None:
            task.completed += advance
        if completed is not None:
            task.completed = completed
        if description is not None:
            task.description = description
        self._callback(task)

    def __enter__(self) -> CallbackProgress:  # Backtesting.start: ``with self.progress``
        return self

    def __exit__(self, *_: Any) -> None:
        return None


def get_progress_tracker(**kwargs: Any) -> Any:
    """Replaces ``freqtrade.optimize.backtesting.get_progress_tracker``: rich's only when
    there is no callback (a display is wanted)."""
    from freqtrade.util.progress_tracker import get_progress_tracker as rich_tracker

    if kwargs.keys() == {"ft_callback"} and kwargs["ft_callback"] is not None:
        return CallbackProgress(kwargs["ft_callback"])
    return rich_tracker(**kwargs)


_STOCK: dict[str, Any] = {}


def _targets() -> dict[str, Any]:
    """The Freqtrade code that makes the tracker, drives it and reads its tasks."""
    from freqtrade.optimize import backtesting
    from freqtrade.util import rich_progress

    bt = backtesting.Backtesting
    return {"get_progress_tracker": _STOCK.get("get_progress_tracker", backtesting.get_progress_tracker),
            "CustomProgress.update": rich_progress.CustomProgress.update,
            "init_backtest": bt.init_backtest, "_set_progress_step": bt._set_progress_step,
            "_increment_progress": bt._increment_progress, "start": bt.start}


#: The stock sources this was proven against (freqtrade 2026.9).
SOURCES: dict[str, str] = {
    "get_progress_tracker": "54ec7bcfeef36c861898ac9b0a2806ce82179202eb1d0d2e8fe2f991ef675423",
    "CustomProgress.update": "910b71b1a59d9202fcf2c5d2cbc7a49f954b4c2437cfbac9120093c27e1da580",
    "init_backtest": "f52bdedbfd91124047b5658213253c4724e3d5be9a36669d7c1423bfe5cb8462",
    "_set_progress_step": "5ccc9ed498e26c684c4557386e8cf0c98c92d4ab087069531806e9b54e20d388",
    "_increment_progress": "e4e5f2502fd4d87c05a1675776d6d938d04025897a6ecd181f2bbb1a688dd9c2",
    "start": "3ca00203a7b2f2ebf360e69566951de2c41a5fd8306b9ad398314ce67795330d",  # `with self.progress`
}


def install() -> bool:
    """Make Backtesting report progress through CallbackProgress. False (rich kept) on a mismatch."""
    from freqtrade.optimize import backtesting

    reason = unproven(SOURCES, _targets)
    if reason:
        log.warning("callback progress not installed; using rich's", reason=reason)
        return False
    _STOCK.setdefault("get_progress_tracker", backtesting.get_progress_tracker)
    backtesting.get_progress_tracker = get_progress_tracker
    log.info("progress reported without rich (engine.phase_progress)")
    return True
