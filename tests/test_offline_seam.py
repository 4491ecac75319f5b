"""The Freqtrade internals the offline engine depends on. An upgrade that moves them fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from strategy_runner.engine import offline

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = ROOT / "configs" / "markets" / "binance.json"


def test_pyproject_pins_the_version_the_seam_was_written_for():
    pin = re.search(r'"freqtrade==([^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert pin and pin.group(1) == offline.PINNED_FREQTRADE
    import freqtrade

    assert freqtrade.__version__ == offline.PINNED_FREQTRADE


def test_seam_check_passes_on_the_pinned_version():
    offline.check_seam()


def test_seam_check_fails_loudly_when_the_internal_moves(monkeypatch):
    from freqtrade.exchange.exchange import Exchange

    monkeypatch.delattr(Exchange, "_api_reload_markets")
    with pytest.raises(Exception, match="moved"):
        offline.check_seam()


@pytest.mark.parametrize(
    "mode,pair,extra",
    [("spot", "BTC/USDT", {}), ("futures", "BTC/USDT:USDT", {"margin_mode": "isolated"})],
)
def test_exchange_loads_snapshot_markets_without_network(monkeypatch, tmp_path, mode, pair, extra):
    from freqtrade.enums import RunMode
    from freqtrade.exchange.exchange import Exchange
    from freqtrade.resolvers import ExchangeResolver

    monkeypatch.setattr(Exchange, "_api_reload_markets", Exchange._api_reload_markets)  # restored after
    calls = []
    import ccxt.async_support as ccxt_async

    monkeypatch.setattr(ccxt_async.Exchange, "load_markets", lambda *a, **k: calls.append(a))
    offline.serve_markets_offline(offline.load_snapshot(SNAPSHOT))
    config = {
        "exchange": {"name": "binance", "key": "", "secret": "", "pair_whitelist": [pair]},
        "stake_currency": "USDT", "dry_run": True, "runmode": RunMode.BACKTEST, "trading_mode": mode,
        "candle_type_def": "spot", "timeframe": "5m", "user_data_dir": tmp_path, **extra,
        "entry_pricing": {"price_side": "same", "use_order_book": mode == "futures", "order_book_top": 1},
        "exit_pricing": {"price_side": "same", "use_order_book": mode == "futures", "order_book_top": 1},
    }
    exchange = ExchangeResolver.load_exchange(config, validate=True, load_leverage_tiers=True)
    try:
        assert not calls, "ccxt's network loader was called"
        assert pair in exchange.markets
        assert exchange.get_fee(pair, taker_or_maker="taker") > 0
        assert exchange.get_precision_price(pair) > 0
        if mode == "futures":
            assert pair in exchange._leverage_tiers  # leverage tiers come from Freqtrade's shipped file
    finally:
        exchange.close()


def test_snapshot_errors_are_clear(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text("{not json")
    with pytest.raises(Exception, match="not valid JSON"):
        offline.load_snapshot(bad)
    with pytest.raises(Exception, match="does not exist"):
        offline.load_snapshot(tmp_path / "missing.json")
