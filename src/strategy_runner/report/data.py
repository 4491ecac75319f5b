"""What a report is built from: one run's files, read once into a ``RunData``.

Freqtrade's own numbers come first: its strategy stats JSON and market-change series inside
the result zip (``files.freqtrade_zip``). ``trades.csv`` is the fallback when the zip is
missing or unreadable (a comparison reads only the light files, for speed).
"""

from __future__ import annotations

import csv
import io
import json
import math
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .series import thin_arrays


#: The market-change series is kept at this many time buckets (4 points each at most).
MARKET_CHANGE_BUCKETS = 1000


def number(value: Any, default: float = 0.0) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return default
    return out if math.isfinite(out) else default


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def parse_time(text: str) -> float:
    """Freqtrade's dates ("2024-10-01 03:10:00[+00:00]") as UTC epoch seconds."""
    when = datetime.fromisoformat(text)
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


@dataclass
class RunData:
    run_dir: Path
    summary: dict[str, Any]
    #: one dict per closed trade, by close time: pair, open_ts, close_ts (epoch s), open_rate,
    #: close_rate, profit_abs, profit_ratio, duration_min, is_short, exit_reason, enter_tag,
    #: leverage, funding_fees, stake
    trades: list[dict[str, Any]]
    #: Freqtrade's stats of this strategy (results_per_pair, exit_reason_summary, ...); {} without the zip
    stats: dict[str, Any] = field(default_factory=dict)
    #: Freqtrade's market change: (epoch s, cumulative mean relative change of the pairs)
    market_change: list[tuple[float, float]] = field(default_factory=list)
    #: what the report could not read, said on the page
    notes: list[str] = field(default_factory=list)

    @property
    def start_balance(self) -> float:
        wallet = self.stats.get("starting_balance") or (self.summary.get("stake") or {}).get("dry_run_wallet")
        return number(wallet, 1000.0)

    @property
    def currency(self) -> str:
        return (self.summary.get("stake") or {}).get("stake_currency") or self.stats.get("stake_currency") or ""

    @property
    def period(self) -> tuple[float, float]:
        start, end = self.summary.get("backtest_start"), self.summary.get("backtest_end")
        if start and end:
            return parse_time(start), parse_time(end)
        if self.trades:
            return self.trades[0]["open_ts"], self.trades[-1]["close_ts"]
        return 0.0, 1.0


def load_run(run_dir: Path, *, with_freqtrade_files: bool = True) -> RunData:
    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "backtest-result.json").read_text())
    stats: dict[str, Any] = {}
    market: list[tuple[float, float]] = []
    zip_name = (summary.get("files") or {}).get("freqtrade_zip")
    notes = []
    if with_freqtrade_files and zip_name:
        try:
            stats, market = read_freqtrade_zip(run_dir / zip_name, summary.get("strategy"))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:  # the rest of the report still stands
            notes.append(f"Freqtrade's result archive {zip_name} could not be read ({exc}): its tables and the "
                         "benchmark are missing, the trades come from trades.csv")
    trades = trades_from_stats(stats["trades"]) if stats.get("trades") is not None else read_trades(
        run_dir / ((summary.get("files") or {}).get("trades") or "trades.csv"))
    return RunData(run_dir=run_dir, summary=summary, trades=trades, stats=stats, market_change=market, notes=notes)


def read_freqtrade_zip(path: Path, strategy: str | None) -> tuple[dict[str, Any], list[tuple[float, float]]]:
    """(the strategy's stats, its market-change series) from Freqtrade's result archive."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        result = next((n for n in names if n.endswith(".json") and not n.endswith("_config.json")), None)
        stats: dict[str, Any] = {}
        if result:
            strategies = json.loads(archive.read(result)).get("strategy") or {}
            stats = strategies.get(strategy) or next(iter(strategies.values()), {})
        market_name = next((n for n in names if n.endswith("_market_change.feather")), None)
        market = _market_change(archive.read(market_name)) if market_name else []
    return stats, market


def _market_change(raw: bytes) -> list[tuple[float, float]]:
    import pyarrow.feather as feather

    table = feather.read_table(io.BytesIO(raw), columns=["date", "rel_mean"])
    dates = table.column("date").cast("int64").to_numpy()  # the unit is the column's own
    unit = {"s": 1, "ms": 1e3, "us": 1e6, "ns": 1e9}[table.schema.field("date").type.unit]
    values = table.column("rel_mean").to_numpy()
    if len(dates) == 0:
        return []
    return thin_arrays(dates / unit, values, MARKET_CHANGE_BUCKETS)  # a point a candle is far more than a chart draws


def _trade(pair: str, open_ts: float, close_ts: float, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "pair": pair, "open_ts": open_ts, "close_ts": close_ts,
        "open_rate": number(row.get("open_rate")), "close_rate": number(row.get("close_rate")),
        "profit_abs": number(row.get("profit_abs")), "profit_ratio": number(row.get("profit_ratio")),
        "duration_min": number(row.get("trade_duration")), "is_short": row.get("is_short") in (True, "True"),
        "exit_reason": row.get("exit_reason") or "", "enter_tag": row.get("enter_tag") or "",
        "leverage": number(row.get("leverage"), 1.0), "funding_fees": number(row.get("funding_fees")),
        "stake": number(row.get("stake_amount")),
    }


def trades_from_stats(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    trades = []
    for row in rows:
        if row.get("is_open"):
            continue
        try:
            trades.append(_trade(row["pair"], row["open_timestamp"] / 1000, row["close_timestamp"] / 1000, row))
        except (KeyError, TypeError):
            continue
    return sorted(trades, key=lambda t: t["close_ts"])


def read_trades(path: Path) -> list[dict[str, Any]]:
    """trades.csv (the runner's own export), in the same shape as the stats' trades."""
    if not path.is_file():
        return []
    trades = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                trades.append(_trade(row["pair"], parse_time(row["open_date"]), parse_time(row["close_date"]), row))
            except (KeyError, ValueError):
                continue
    return sorted(trades, key=lambda t: t["close_ts"])


def equity_series(trades: list[dict[str, Any]], start_balance: float, start_ts: float | None = None
                  ) -> list[tuple[float, float]]:
    """The closed-trade balance: the start, then one point per trade close (epoch s, balance)."""
    first = start_ts if start_ts is not None else trades[0]["open_ts"] if trades else None
    points = [] if first is None else [(first, start_balance)]
    balance = start_balance
    for t in trades:
        balance += t["profit_abs"]
        points.append((t["close_ts"], balance))
    return points


def equity_curve(run_dir: Path) -> list[tuple[datetime, float]]:
    """A run's closed-trade balance over time: [(UTC datetime, balance)], starting with the
    starting balance at the backtest's start. Reads only backtest-result.json and trades.csv
    (no Freqtrade, no pandas), so a tracker can log it as a metric history cheaply."""
    run = load_run(run_dir, with_freqtrade_files=False)
    start, _end = run.period
    return [(utc(ts), balance) for ts, balance in equity_series(run.trades, run.start_balance, start)]
