"""MARKETS=infer: a market entry for a pair no snapshot has, from its name and its candles.

- From the name: ``BASE/QUOTE`` is spot, ``BASE/QUOTE:QUOTE`` a linear perpetual swap (an
  inverse ``BASE/USD:BASE`` is refused: its contract maths cannot be guessed).
- Price tick: the finest tick the candles need, computed the way Freqtrade infers price
  precision from data (``get_tick_size_over_time``, its minimum over the months).
- Conservative defaults where nothing can be known (documented in docs/markets.md):
  amount step 1e-8 (no rounding of stakes), no minimum order size or cost, contract size 1,
  fees the config's ``fee`` or else 0.1 % (spot) / 0.05 % (swap) for maker and taker.
The entries are listed in the summary (``markets.inferred_pairs``): a result computed on
guessed fees and ticks says so.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError, DataError

AMOUNT_STEP = 1e-8
DEFAULT_FEE = {"spot": 0.001, "swap": 0.0005}


def infer_market(pair: str, candles: Any, *, fee: float | None = None) -> dict[str, Any]:
    """One ccxt unified market for ``pair``; ``candles`` a Freqtrade OHLCV DataFrame."""
    symbol, _, settle = pair.partition(":")
    base, _, quote = symbol.partition("/")
    if not base or not quote:
        raise ConfigurationError(f"{pair}: cannot infer a market from a pair not written BASE/QUOTE[:SETTLE]")
    if settle and settle != quote:
        raise ConfigurationError(f"{pair}: an inverse contract (settled in {settle}) cannot be inferred; "
                                 "add it to a markets snapshot")
    if candles is None or len(candles) == 0:
        raise DataError(f"{pair}: MARKETS=infer needs the pair's candles to infer its price tick, and there are none")
    from ..engine.fast_precision import get_tick_size_over_time

    tick = float(get_tick_size_over_time(candles[["date", "open", "high", "low", "close"]].copy()).min())
    kind = "swap" if settle else "spot"
    rate = DEFAULT_FEE[kind] if fee is None else float(fee)
    return {
        "id": f"{base}{quote}", "symbol": pair, "base": base, "quote": quote, "settle": settle or None,
        "baseId": base, "quoteId": quote, "settleId": settle or None, "type": kind,
        "spot": kind == "spot", "margin": False, "swap": kind == "swap", "future": False, "option": False,
        "contract": kind == "swap", "linear": True if settle else None, "inverse": False if settle else None,
        "contractSize": 1.0 if settle else None, "active": True, "taker": rate, "maker": rate,
        "precision": {"price": tick, "amount": AMOUNT_STEP},
        "limits": {"amount": {"min": None, "max": None}, "price": {"min": None, "max": None},
                   "cost": {"min": None, "max": None}, "leverage": {"min": None, "max": None}},
        "info": {"inferred": True},
    }
