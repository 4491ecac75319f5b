"""``strategy-runner import-data FILE --pair P --timeframe TF``: write the candles where Freqtrade
(and `strategy-runner backtest`) read them, through Freqtrade's own data handler."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ValidationError

FORMATS = ("feather", "parquet", "json", "jsongz")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import-data", help="import a CSV of OHLCV candles into Freqtrade's data layout")
    p.add_argument("file", type=Path, help="CSV with a date column and open, high, low, close, volume")
    p.add_argument("--pair", required=True, help="e.g. EUR/USD, or BTC/USDT:USDT for a futures pair")
    p.add_argument("--timeframe", required=True, help="the candles' timeframe, e.g. 5m, 1h, 1d")
    p.add_argument("--data-dir", type=Path, default=Path("data"))
    p.add_argument("--trading-mode", choices=("spot", "futures"), default=None,
                   help="default: futures for BASE/QUOTE:SETTLE pairs, spot otherwise")
    p.add_argument("--data-format", choices=FORMATS, default="feather",
                   help="the config's dataformat_ohlcv (default feather)")
    p.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    from freqtrade.data.history import get_datahandler
    from freqtrade.enums import CandleType
    from freqtrade.exchange import timeframe_to_seconds

    from ..settings import parse_pairs
    from .csv_candles import read_candles

    try:
        (pair,) = parse_pairs(args.pair)
    except ValueError as exc:
        raise ValidationError(f"--pair {args.pair!r}: {exc}") from None
    try:
        timeframe_to_seconds(args.timeframe)
    except Exception:  # noqa: BLE001 - freqtrade raises several kinds for a bad timeframe
        raise ValidationError(f"--timeframe {args.timeframe!r}: expected a timeframe like 5m, 1h or 1d") from None
    mode = args.trading_mode or ("futures" if ":" in pair else "spot")
    if (mode == "futures") != (":" in pair):
        raise ValidationError(f"--pair {pair} with --trading-mode {mode}: futures pairs are written BASE/QUOTE:SETTLE")
    candles = read_candles(args.file, args.timeframe)
    handler = get_datahandler(args.data_dir, args.data_format)
    candle_type = CandleType.FUTURES if mode == "futures" else CandleType.SPOT
    args.data_dir.mkdir(parents=True, exist_ok=True)
    handler.ohlcv_store(pair, args.timeframe, candles, candle_type)
    written = handler._pair_data_filename(args.data_dir, pair, args.timeframe, candle_type)
    print(f"{written}: {len(candles)} candles of {pair} {args.timeframe}, "
          f"{candles['date'].iloc[0]:%Y-%m-%d %H:%M} to {candles['date'].iloc[-1]:%Y-%m-%d %H:%M} UTC")
    return 0
