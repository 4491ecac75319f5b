"""Freqtrade's guard around strategy callbacks, made once per callback instead of per call.

Freqtrade calls every strategy callback through ``strategy_safe_wrapper(method, ...)(...)``,
which builds a new ``functools.wraps`` closure each time: on every candle for
``bot_loop_start``, per open trade and candle for ``custom_exit``, ``custom_stoploss``,
``custom_roi``. Building them cost ~2 s of a 10 pair-year backtest (profiled), as much in
plain Freqtrade. Here the stock wrapper is built once per (method, strategy, message,
default, supress_error) and reused: the same object Freqtrade would build, calling the same
function on the same strategy, so it behaves the same (deep-copied trades, logged errors,
StrategyError). Only a bound method with a default of None, True or False is reused (a rate
or a stake as the default changes per call); anything else gets the stock call.

Installed on the runner's path only (engine.backtest), for the pinned Freqtrade, when
``strategy_safe_wrapper`` has the source it was checked against and both modules that call
it still hold the stock function (tests/test_strategy_calls.py).
"""

from __future__ import annotations

from types import MethodType
from typing import Any

from ..logs import get_logger
from .offline import unproven

log = get_logger(__name__)

#: The modules calling strategy callbacks during a backtest, by the name they import.
CALLERS = ("freqtrade.strategy.interface", "freqtrade.optimize.backtesting")
#: The stock source this was proven against (freqtrade 2026.9).
SOURCES = {"strategy_safe_wrapper": "73cf073f1da67ee0b6ee8eef9e0f8a190cc8c0d1799fd78e91311e5e83512d38"}

_stock: Any = None
_made: dict[tuple, Any] = {}


def strategy_safe_wrapper(f: Any, message: str = "", default_retval: Any = None, supress_error: bool = False) -> Any:
    """Replaces ``freqtrade.strategy.strategy_wrapper.strategy_safe_wrapper`` in CALLERS."""
    if type(f) is not MethodType or not (default_retval is None or default_retval is True
                                         or default_retval is False) or type(message) is not str:
        return _stock(f, message, default_retval, supress_error)
    key = (f.__func__, f.__self__, message, default_retval, bool(supress_error))
    wrapper = _made.get(key)
    if wrapper is None:
        wrapper = _made[key] = _stock(f, message, default_retval, supress_error)
    return wrapper


def install() -> bool:
    """Reuse the wrappers. False (Freqtrade's own kept) on any mismatch."""
    global _stock
    import importlib

    from freqtrade.strategy import strategy_wrapper

    stock = _stock or strategy_wrapper.strategy_safe_wrapper
    modules = [importlib.import_module(name) for name in CALLERS]
    reason = unproven(SOURCES, lambda: {"strategy_safe_wrapper": stock})
    if reason is None and any(m.strategy_safe_wrapper not in (stock, strategy_safe_wrapper) for m in modules):
        reason = "a module calling strategy callbacks holds another strategy_safe_wrapper"
    if reason:
        log.warning("strategy callback wrappers not reused; using freqtrade's own", reason=reason)
        return False
    _stock = stock
    for module in modules:
        module.strategy_safe_wrapper = strategy_safe_wrapper
    log.info("strategy callback wrappers made once (engine.strategy_calls)")
    return True
