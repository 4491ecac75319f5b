"""The markets snapshot file: ccxt's unified markets for one exchange, validated on load.

    {"exchange": "binance", "ccxt_version": "4.5.90", "taken_at": "2026-12-01T08:00:00Z",
     "trading_mode": "spot", "markets": {"BTC/USDT": {...ccxt unified market...}, ...}}

``exchange`` and ``markets`` are required; each market needs the fields Freqtrade reads
(symbol, base, quote, type, active, precision.price/amount, limits; settle and contractSize
for swaps). Prices and amounts are ccxt TICK_SIZE values (every ccxt exchange uses them).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigurationError

MARKET_TYPES = ("spot", "swap", "future")
_REQUIRED = ("symbol", "base", "quote", "type", "active", "precision", "limits")


@dataclass(frozen=True)
class Snapshot:
    exchange: str
    markets: dict[str, dict[str, Any]]
    origin: str  # where it was read from: a path, an s3:// URI, or "inferred"
    sha256: str | None = None
    ccxt_version: str | None = None
    taken_at: str | None = None
    inferred: tuple[str, ...] = field(default=())

    def describe(self) -> dict[str, Any]:
        """What the summary records about the markets a result was computed with."""
        return {"exchange": self.exchange, "source": self.origin, "sha256": self.sha256,
                "ccxt_version": self.ccxt_version, "taken_at": self.taken_at, "markets": len(self.markets),
                "inferred_pairs": list(self.inferred)}


def parse_snapshot(raw: bytes, origin: str) -> Snapshot:
    """A validated snapshot, or a ConfigurationError naming the file and the first problem."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"markets snapshot {origin} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"markets snapshot {origin}: expected a JSON object with 'exchange' and 'markets'")
    exchange, markets = data.get("exchange"), data.get("markets")
    if not isinstance(exchange, str) or not exchange:
        raise ConfigurationError(f"markets snapshot {origin}: 'exchange' (the ccxt id, e.g. \"binance\") is missing")
    if not isinstance(markets, dict) or not markets:
        raise ConfigurationError(f"markets snapshot {origin} has no 'markets' object")
    for symbol, market in markets.items():
        problem = market_problem(symbol, market)
        if problem:
            raise ConfigurationError(f"markets snapshot {origin}: market {symbol!r}: {problem}")
    return Snapshot(exchange=exchange.lower(), markets=markets, origin=origin, sha256=hashlib.sha256(raw).hexdigest(),
                    ccxt_version=data.get("ccxt_version"), taken_at=data.get("taken_at"))


def market_problem(symbol: str, market: Any) -> str | None:
    if not isinstance(market, dict):
        return "expected an object (a ccxt unified market)"
    missing = [f for f in _REQUIRED if f not in market]
    if missing:
        return f"missing {', '.join(missing)}"
    if market["symbol"] != symbol:
        return f"its symbol is {market['symbol']!r}"
    if market["type"] not in MARKET_TYPES:
        return f"type {market['type']!r} is not one of {', '.join(MARKET_TYPES)}"
    precision = market["precision"] if isinstance(market["precision"], dict) else {}
    for key in ("price", "amount"):
        value = precision.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            return f"precision.{key} must be a positive tick size, got {value!r}"
    if not isinstance(market["limits"], dict):
        return "limits must be an object"
    if market["type"] != "spot" and (not market.get("settle") or not market.get("contractSize")):
        return "a swap/future needs settle and contractSize"
    return None


def dump_snapshot(exchange: str, markets: dict[str, Any], *, ccxt_version: str, taken_at: str,
                  trading_mode: str) -> str:
    return json.dumps({"exchange": exchange, "ccxt_version": ccxt_version, "taken_at": taken_at,
                       "trading_mode": trading_mode, "markets": markets}, indent=1, sort_keys=True, default=str)
