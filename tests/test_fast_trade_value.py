"""engine.fast_trade_value prices trades exactly as Freqtrade's FtPrecise code does."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from freqtrade.enums import TradingMode
from freqtrade.persistence.trade_model import LocalTrade

from strategy_runner.engine import fast_trade_value
from tests.conftest import runner


@pytest.fixture
def installed():
    assert fast_trade_value.install() is True
    yield fast_trade_value._STOCK
    fast_trade_value.uninstall()


def _trade() -> LocalTrade:
    return LocalTrade(pair="BTC/USDT", open_rate=100.0, amount=1.0, fee_open=0.001, fee_close=0.001, is_short=False,
                      open_date=datetime.now(UTC), stake_amount=100.0, trading_mode=TradingMode.SPOT, leverage=1.0)


def _value(rng: random.Random) -> float:
    """Prices and amounts as they occur (rounded to ticks, raw floats, integers) and awkward ones."""
    kind = rng.random()
    if kind < 0.3:
        return round(rng.uniform(0.00001, 100_000), rng.randint(0, 12))
    if kind < 0.6:
        return rng.uniform(1e-9, 1e7)
    if kind < 0.7:
        return float(rng.randint(1, 10**6))
    if kind < 0.8:
        return rng.choice([1e-5, 1e-8, 0.1, 0.3, 1 / 3, 2 / 3, 1e15, 123456789.123456789, 0.0, 5e-324, 1.7e308])
    return 10 ** rng.uniform(-12, 12)


def _same(a: float, b: float) -> bool:
    return a == b and math.copysign(1, a) == math.copysign(1, b)


def test_values_equal_the_stock_methods_bit_for_bit(installed):
    rng = random.Random(20261201)
    trade = _trade()
    checked = 0
    for _ in range(40_000):
        trade.is_short = rng.random() < 0.5
        trade.trading_mode = rng.choice([TradingMode.SPOT, TradingMode.FUTURES, None])
        trade.fee_open = trade.fee_close = rng.choice([0.001, 0.0005, 0.00075, 0.0, None, _value(rng) * 1e-6])
        trade.funding_fees = rng.choice([0.0, None, rng.uniform(-5, 5)])
        trade.amount = _value(rng)
        amount, rate = _value(rng), _value(rng)
        cases = ((fast_trade_value._calc_open_trade_value, installed["_calc_open_trade_value"], (amount, rate)),
                 (fast_trade_value.calc_close_trade_value, installed["calc_close_trade_value"],
                  (rate, rng.choice([None, amount]))))
        for fast, stock, args in cases:
            try:
                expected = stock(trade, *args)
            except Exception as exc:  # noqa: BLE001 - then the fast path raises the same
                with pytest.raises(type(exc)):
                    fast(trade, *args)
                continue
            assert _same(fast(trade, *args), expected), (args, trade.is_short, trade.trading_mode, trade.fee_open)
            checked += 1
    assert checked > 70_000


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), None, "abc"])
def test_what_decimal_cannot_price_takes_the_stock_path(installed, bad):
    trade = _trade()
    for fast, stock, args in ((fast_trade_value.calc_close_trade_value, installed["calc_close_trade_value"], (bad,)),
                              (fast_trade_value._calc_open_trade_value, installed["_calc_open_trade_value"], (1.0, bad))):
        try:
            expected = stock(trade, *args)
        except Exception as exc:  # noqa: BLE001
            with pytest.raises(type(exc)):
                fast(trade, *args)
        else:
            got = fast(trade, *args)
            assert _same(got, expected) or (math.isnan(got) and math.isnan(expected))


def test_margin_keeps_the_stock_method(installed, monkeypatch):
    trade = _trade()
    trade.trading_mode = TradingMode.MARGIN
    calls = []
    monkeypatch.setitem(installed, "calc_close_trade_value", lambda *a: calls.append(a) or 1.5)
    assert fast_trade_value.calc_close_trade_value(trade, 101.0) == 1.5
    assert calls


def test_install_patches_local_trade_and_refuses_other_code(monkeypatch):
    import freqtrade

    try:
        monkeypatch.setattr(freqtrade, "__version__", "2099.1")
        assert fast_trade_value.install() is False
        assert LocalTrade.calc_close_trade_value is fast_trade_value._STOCK["calc_close_trade_value"]
        monkeypatch.undo()
        monkeypatch.setattr(fast_trade_value, "CHECKED_SOURCE_SHA256", "0" * 64)  # the stock code changed
        assert fast_trade_value.install() is False
        monkeypatch.undo()
        assert fast_trade_value.install() is True
        assert LocalTrade.calc_close_trade_value is fast_trade_value.calc_close_trade_value
        assert LocalTrade._calc_open_trade_value is fast_trade_value._calc_open_trade_value
    finally:
        fast_trade_value.uninstall()


def test_the_checked_source_is_the_installed_freqtrade():
    fast_trade_value.install()
    fast_trade_value.uninstall()
    assert fast_trade_value.stock_source_sha256() == fast_trade_value.CHECKED_SOURCE_SHA256


def test_futures_with_shorts_give_byte_identical_trades_with_and_without(run_env, tmp_path):
    """EmaCrossFutures goes long and short with leverage and funding fees."""
    dirs = {}
    for fast in (False, True):
        run_id = f"trade-value-{'fast' if fast else 'stock'}"
        env = {**run_env, "RUN_ID": run_id, "STRATEGY": "EmaCrossFutures", "CONFIG": "futures.json",
               "PAIRS": "BTC/USDT:USDT,ETH/USDT:USDT", "TIMERANGE": "20240901-20240915",
               "FAST_PRECISION": str(fast).lower(), "RESULT_CACHE": "false"}
        proc = runner(env, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        dirs[fast] = Path(env["RUNS_DIR"]) / run_id
    assert "trade values computed in C decimals" in (dirs[True] / "run.log").read_text()
    assert "trade values computed in C decimals" not in (dirs[False] / "run.log").read_text()
    stock = (dirs[False] / "trades.csv").read_bytes()
    assert stock.count(b"\n") > 5 and b",True," in stock  # trades, shorts among them
    assert (dirs[True] / "trades.csv").read_bytes() == stock
    a, b = (json.loads((dirs[k] / "backtest-result.json").read_text()) for k in (False, True))
    for key in ("metrics", "per_pair"):
        assert json.dumps(a[key], sort_keys=True) == json.dumps(b[key], sort_keys=True), key
    assert (dirs[True] / "freqtrade-report.txt").read_text() == (dirs[False] / "freqtrade-report.txt").read_text()
