"""engine.strategy_calls reuses Freqtrade's own callback wrapper, and only where that is the same."""

from __future__ import annotations

import importlib
import logging

import pytest

from strategy_runner.engine import strategy_calls
from strategy_runner.engine.offline import source_sha256


@pytest.fixture
def installed(monkeypatch):
    """Installed, and Freqtrade's modules given back their stock function afterwards."""
    from freqtrade.strategy import strategy_wrapper

    for name in strategy_calls.CALLERS:
        monkeypatch.setattr(importlib.import_module(name), "strategy_safe_wrapper", strategy_wrapper.strategy_safe_wrapper)
    assert strategy_calls.install() is True
    return strategy_wrapper.strategy_safe_wrapper


class Strategy:
    def __init__(self):
        self.seen = []

    def custom_exit(self, pair, trade=None, **kwargs):
        self.seen.append(trade)
        if pair == "raise value":
            raise ValueError("bad value")
        if pair == "raise":
            raise KeyError("no such column")
        return pair


def test_the_checked_source_is_the_installed_freqtrade():
    """Fails on a Freqtrade upgrade that changes the wrapper: prove it again, then update SOURCES."""
    from freqtrade.strategy import strategy_wrapper

    assert (source_sha256(strategy_wrapper.strategy_safe_wrapper)
            == strategy_calls.SOURCES["strategy_safe_wrapper"])


def test_callers_use_the_reused_wrappers_once_installed(installed):
    for name in strategy_calls.CALLERS:
        assert importlib.import_module(name).strategy_safe_wrapper is strategy_calls.strategy_safe_wrapper
    assert strategy_calls.install() is True  # twice: still wraps the stock function


def test_a_bound_method_with_a_constant_default_is_wrapped_once(installed):
    one, two = Strategy(), Strategy()
    first = strategy_calls.strategy_safe_wrapper(one.custom_exit, default_retval=False)
    assert strategy_calls.strategy_safe_wrapper(one.custom_exit, default_retval=False) is first
    assert strategy_calls.strategy_safe_wrapper(two.custom_exit, default_retval=False) is not first
    assert strategy_calls.strategy_safe_wrapper(one.custom_exit, default_retval=None) is not first
    assert strategy_calls.strategy_safe_wrapper(one.custom_exit, default_retval=False, supress_error=True) is not first
    # A default that changes per call (a rate, a stake) or a plain function: the stock call each time.
    assert (strategy_calls.strategy_safe_wrapper(one.custom_exit, default_retval=1.5)
            is not strategy_calls.strategy_safe_wrapper(one.custom_exit, default_retval=1.5))
    assert strategy_calls.strategy_safe_wrapper(print) is not strategy_calls.strategy_safe_wrapper(print)


@pytest.mark.parametrize("kwargs", [{"default_retval": False}, {"default_retval": None}, {"supress_error": True},
                                    {"default_retval": True, "message": "exit: "}])
@pytest.mark.parametrize("pair", ["ok", "raise value", "raise"])
def test_a_reused_wrapper_does_what_a_new_one_does(installed, kwargs, pair, caplog):
    """Returned value, raised StrategyError, log lines, and the trade deep-copied for the strategy."""
    from freqtrade.exceptions import StrategyError

    def outcome(make):
        strategy, trade = Strategy(), {"id": 1}
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            for _ in range(2):
                try:
                    got = ("returned", make(strategy.custom_exit, **kwargs)(pair, trade=trade))
                except StrategyError as exc:
                    got = ("raised", str(exc))
        copied = [seen is not trade and seen == trade for seen in strategy.seen]
        return got, copied, [(r.levelname, r.getMessage().replace(hex(id(strategy)), "<id>")) for r in caplog.records]

    assert outcome(strategy_calls.strategy_safe_wrapper) == outcome(installed)


def test_not_installed_over_another_freqtrade_or_someone_elses_patch(monkeypatch):
    import freqtrade
    from freqtrade.optimize import backtesting
    from freqtrade.strategy import strategy_wrapper

    stock = strategy_wrapper.strategy_safe_wrapper
    for name in strategy_calls.CALLERS:
        monkeypatch.setattr(importlib.import_module(name), "strategy_safe_wrapper", stock)
    with monkeypatch.context() as m:
        m.setattr(freqtrade, "__version__", "2099.1")
        assert strategy_calls.install() is False
    with monkeypatch.context() as m:
        m.setitem(strategy_calls.SOURCES, "strategy_safe_wrapper", "0" * 64)
        assert strategy_calls.install() is False
    with monkeypatch.context() as m:
        m.setattr(backtesting, "strategy_safe_wrapper", lambda f, *a, **k: f)
        assert strategy_calls.install() is False
    assert backtesting.strategy_safe_wrapper is stock
