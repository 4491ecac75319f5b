"""``strategy-runner markets snapshot``: write a snapshot from a live exchange (needs network).

Run it where network exists (a data-sync task, a laptop); the backtests then run offline on
the file. ``take`` works on any ccxt exchange object, so a test can feed it recorded markets.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .snapshot import dump_snapshot, market_problem, parse_snapshot


def take(exchange: Any, trading_mode: str) -> str:
    """The snapshot text for ``exchange`` (a ccxt Exchange): spot markets, or linear swaps for futures."""
    import ccxt

    markets = exchange.load_markets()
    wanted = ("spot",) if trading_mode == "spot" else ("swap", "future")
    kept = {symbol: market for symbol, market in markets.items()
            if market.get("type") in wanted and (trading_mode == "spot" or market.get("linear"))
            and market_problem(symbol, market) is None}
    text = dump_snapshot(exchange.id, kept, ccxt_version=ccxt.__version__, trading_mode=trading_mode,
                         taken_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"))
    parse_snapshot(text.encode(), f"{exchange.id} snapshot")  # what we write, we can read
    return text


def add_parser(sub: argparse._SubParsersAction) -> None:
    markets = sub.add_parser("markets", help="markets snapshots for offline backtests")
    verbs = markets.add_subparsers(dest="markets_command", required=True)
    snap = verbs.add_parser("snapshot", help="load an exchange's markets through ccxt (needs network) and write "
                                             "a snapshot the backtests read offline")
    snap.add_argument("--exchange", required=True, help="the ccxt exchange id, e.g. binance, kraken, okx")
    snap.add_argument("--trading-mode", choices=("spot", "futures"), default="spot")
    snap.add_argument("--out", help="the file to write (default: configs/markets/<exchange>.json)")
    snap.set_defaults(func=_snapshot)


def _snapshot(args: argparse.Namespace) -> int:
    import ccxt

    from ..errors import ValidationError

    name = args.exchange.lower()
    if name not in ccxt.exchanges:
        raise ValidationError(f"--exchange {args.exchange!r} is not a ccxt exchange id")
    options = {"options": {"defaultType": "swap"}} if args.trading_mode == "futures" else {}
    text = take(getattr(ccxt, name)(options), args.trading_mode)
    out = Path(args.out or Path("configs") / "markets" / f"{name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    count = len(parse_snapshot(text.encode(), str(out)).markets)
    print(f"{out}: {count} {args.trading_mode} markets of {name}", file=sys.stderr)
    print(out)
    return 0
