"""A trade's open and close value in C decimal arithmetic: the same floats, a fraction of the loop.

For every open trade on every candle Freqtrade asks whether to exit, which prices the trade
(``LocalTrade.calc_close_trade_value`` via ``calc_profit_ratio``). It computes in
``FtPrecise``: ccxt's ``Precise``, exact decimal arithmetic on the shortest repr of each
float, in pure Python (string parsing, big ints, string formatting back to float). On a
10 pair-year backtest that is about a fifth of plain Freqtrade's wall time (profiled).

Here the same values are computed with ``decimal.Decimal`` (C): each input is read from
the same ``str(value)``, the products and sums are exact (a context of 1,000 digits that
*traps* Inexact, so a result that would need rounding raises and the stock method runs
instead), and the exact decimal is turned into a float by the same correctly rounded
string conversion ``Precise.__float__`` uses. Precise never yields -0.0, so an exact zero
is 0.0. Spot and futures only; margin (interest in FtPrecise) and anything unusual
(None, NaN, a value ``Decimal`` rejects) take the stock method.

Installed on the runner's path only (engine.backtest) for the pinned Freqtrade, and only
when the stock methods' source is the one this was proven against
(tests/test_fast_trade_value.py: values, and byte-identical trades of real backtests).
"""

from __future__ import annotations

import decimal
import hashlib
import inspect
from decimal import Decimal
from typing import Any

from ..logs import get_logger
from .offline import not_pinned

log = get_logger(__name__)

_EXACT = decimal.Context(prec=1000, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN,
                         traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow, decimal.Underflow])
_STOCK: dict[str, Any] = {}  # method name -> the stock function, kept at install
_mul, _add, _sub = _EXACT.multiply, _EXACT.add, _EXACT.subtract
_SPOT: Any = None  # TradingMode.SPOT / FUTURES, bound at install (an import per call costs a microsecond)
_FUTURES: Any = None
# Decimal(str) reads the string exactly whatever the context; a NaN or infinity propagates to the
# result (checked once); a string Decimal cannot read raises (caught): both go to the stock method.
_FALLBACK = (decimal.DecimalException, TypeError, ValueError)


def _calc_open_trade_value(self: Any, amount: float, open_rate: float) -> float:
    try:
        open_value = _mul(Decimal(str(amount)), Decimal(str(open_rate)))
        fees = _mul(open_value, Decimal(str(self.fee_open)))
        value = _sub(open_value, fees) if self.is_short else _add(open_value, fees)
    except _FALLBACK:
        return _STOCK["_calc_open_trade_value"](self, amount, open_rate)
    if not value.is_finite():
        return _STOCK["_calc_open_trade_value"](self, amount, open_rate)
    return float(value) if value else 0.0  # Precise never yields -0.0


def calc_close_trade_value(self: Any, rate: float, amount: float | None = None) -> float:
    mode = self.trading_mode or _SPOT
    if (mode is not _SPOT and mode is not _FUTURES) or rate is None:
        return _STOCK["calc_close_trade_value"](self, rate, amount)
    try:
        close_value = _mul(Decimal(str(amount or self.amount)), Decimal(str(rate)))
        fees = _mul(close_value, Decimal(str(self.fee_close or 0.0)))
        total = _add(close_value, fees) if self.is_short else _sub(close_value, fees)
    except _FALLBACK:
        return _STOCK["calc_close_trade_value"](self, rate, amount)
    if not total.is_finite():
        return _STOCK["calc_close_trade_value"](self, rate, amount)
    base = float(total) if total else 0.0
    if mode is _SPOT:
        return base
    funding_fees = self.funding_fees or 0.0  # as the stock method: float arithmetic after the conversion
    return base - funding_fees if self.is_short else base + funding_fees


REPLACEMENTS = {"_calc_open_trade_value": _calc_open_trade_value, "calc_close_trade_value": calc_close_trade_value}


def stock_source_sha256() -> str:
    """The stock methods and the FtPrecise/Precise arithmetic they rely on."""
    from ccxt.base.precise import Precise
    from freqtrade.persistence.trade_model import LocalTrade
    from freqtrade.util.ft_precise import FtPrecise

    parts = [inspect.getsource(_STOCK.get(name) or getattr(LocalTrade, name)) for name in REPLACEMENTS]
    parts += [inspect.getsource(LocalTrade._calc_base_close), inspect.getsource(FtPrecise)]
    parts += [inspect.getsource(getattr(Precise, m)) for m in ("__init__", "mul", "add", "sub", "__str__", "__float__",
                                                                "reduce_digits")]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


#: The stock code this replacement was proven against (freqtrade 2026.9, ccxt 4.5.90).
CHECKED_SOURCE_SHA256 = "a6100ff70372f45edb6846ea861879fefb9a26b213d1f21706c8b55792381589"


def _refusal(local_trade: Any) -> str | None:
    """Why the C decimal methods must not be installed here, or None."""
    if reason := not_pinned():
        return reason
    if any(local_trade.__dict__[n] not in (_STOCK[n], r) for n, r in REPLACEMENTS.items()):
        return "LocalTrade's value methods are not the stock ones"
    if stock_source_sha256() != CHECKED_SOURCE_SHA256:
        return "the stock trade value methods (or ccxt's Precise) changed since the replacement was proven"
    return None


def install() -> bool:
    """Make LocalTrade price trades in C decimals. False (stock methods kept) on any mismatch."""
    from freqtrade.persistence.trade_model import LocalTrade

    for name, replacement in REPLACEMENTS.items():
        current = LocalTrade.__dict__[name]
        if current is not replacement:
            _STOCK.setdefault(name, current)
    if reason := _refusal(LocalTrade):
        log.warning("fast trade values not installed; using freqtrade's own", reason=reason)
        return False
    global _SPOT, _FUTURES  # noqa: PLW0603 - bound once, read on every call
    from freqtrade.enums import TradingMode

    _SPOT, _FUTURES = TradingMode.SPOT, TradingMode.FUTURES
    for name, replacement in REPLACEMENTS.items():
        setattr(LocalTrade, name, replacement)
    log.info("trade values computed in C decimals (engine.fast_trade_value)")
    return True


def uninstall() -> None:
    """The stock methods back (tests compare both paths in one process)."""
    from freqtrade.persistence.trade_model import LocalTrade

    for name, stock in _STOCK.items():
        setattr(LocalTrade, name, stock)
