"""The numbers a report shows: Freqtrade's where it computed them, derived from the trades
where it did not (exposure, best and worst trade, long/short and leverage groups), in the
shape of Freqtrade's own rows so one table renderer draws both."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

from .data import RunData, number, utc


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    value: float | None  # what a comparison sorts by; None: not known for this run
    text: str
    detail: str = ""
    #: +1 higher is better, -1 lower is better, 0 neither (colouring and "best" in comparisons)
    better: int = 1
    neutral: float = 0.0  # the value that is neither good nor bad (a profit factor of 1)


def pct(value: Any) -> str:
    return f"{number(value) * 100:.2f}%"


def money(value: Any, currency: str = "") -> str:
    return f"{number(value):,.2f}{' ' + currency if currency else ''}"


def duration(minutes: float) -> str:
    """As Freqtrade writes an average duration ("2:39:00", "1 day, 4:05:00")."""
    return str(timedelta(minutes=round(minutes)))


def exposure(trades: list[dict[str, Any]], start: float, end: float) -> float:
    """Share of the period with at least one trade open (time in the market)."""
    if end <= start or not trades:
        return 0.0
    covered, reach = 0.0, start
    for t in sorted(trades, key=lambda t: t["open_ts"]):
        lo, hi = max(t["open_ts"], reach), min(t["close_ts"], end)
        if hi > lo:
            covered += hi - lo
            reach = hi
    return covered / (end - start)


def headline(run: RunData) -> list[Metric]:
    """Every headline figure of Freqtrade's summary, in the order a trader reads them."""
    s, m, trades, cur = run.stats, run.summary.get("metrics") or {}, run.trades, run.currency

    def get(key: str) -> Any:
        return s.get(key, m.get(key))

    start, end = run.period
    best = max(trades, key=lambda t: t["profit_ratio"], default=None)
    worst = min(trades, key=lambda t: t["profit_ratio"], default=None)
    days = max((end - start) / 86400, 1e-9)
    count = len(trades)
    wins = sum(t["profit_abs"] > 0 for t in trades)
    losses = sum(t["profit_abs"] < 0 for t in trades)
    avg_minutes = sum(t["duration_min"] for t in trades) / count if count else 0.0
    final = number(s.get("final_balance"), run.start_balance + sum(t["profit_abs"] for t in trades))
    market = s.get("market_change")
    shorts = [t for t in trades if t["is_short"]]
    bal = run.start_balance or 1.0
    short_profit = sum(t["profit_abs"] for t in shorts)
    long_profit = sum(t["profit_abs"] for t in trades) - short_profit
    dd_detail = money(get("max_drawdown_abs"), cur) + (f" over {s['drawdown_duration']}" if s.get("drawdown_duration") else "")
    out = [
        Metric("profit_total", "Total profit", number(get("profit_total")), pct(get("profit_total")),
               "of the starting balance"),
        Metric("profit_total_abs", "Absolute profit", number(get("profit_total_abs")), money(get("profit_total_abs"), cur),
               f"{money(run.start_balance)} → {money(final)}"),
        Metric("cagr", "CAGR", number(get("cagr")), pct(get("cagr"))),
        Metric("max_drawdown_account", "Max drawdown", number(get("max_drawdown_account")),
               pct(get("max_drawdown_account")), dd_detail, better=-1),
        Metric("sharpe", "Sharpe", number(get("sharpe")), f"{number(get('sharpe')):.2f}", "closed trades"),
        Metric("sortino", "Sortino", number(get("sortino")), f"{number(get('sortino')):.2f}", "closed trades"),
        Metric("calmar", "Calmar", number(get("calmar")), f"{number(get('calmar')):.2f}", "closed trades"),
        Metric("sqn", "SQN", number(get("sqn")), f"{number(get('sqn')):.2f}"),
        Metric("profit_factor", "Profit factor", number(get("profit_factor")), f"{number(get('profit_factor')):.2f}",
               "gross profit / gross loss", neutral=1.0),
        Metric("expectancy", "Expectancy", number(get("expectancy")), money(get("expectancy"), cur),
               f"ratio {number(s.get('expectancy_ratio')):.2f}" if "expectancy_ratio" in s else "per trade"),
        Metric("winrate", "Win rate", number(get("winrate")), pct(get("winrate")),
               f"{number(get('wins'), wins):.0f} W / {number(get('draws'), count - wins - losses):.0f} D / "
               f"{number(get('losses'), losses):.0f} L"),
        Metric("total_trades", "Trades", float(count), f"{count}", f"{count / days:.2f} per day", better=0),
        Metric("long_short", "Long / short", None, f"{len(trades) - len(shorts)} / {len(shorts)}",
               f"profit {pct(s.get('profit_total_long', long_profit / bal))} / "
               f"{pct(s.get('profit_total_short', short_profit / bal))}", better=0),
        Metric("duration_avg", "Avg duration", avg_minutes, duration(avg_minutes), "per trade", better=0),
        Metric("best_trade", "Best trade", best["profit_ratio"] if best else None,
               pct(best["profit_ratio"]) if best else "–", best["pair"] if best else ""),
        Metric("worst_trade", "Worst trade", worst["profit_ratio"] if worst else None,
               pct(worst["profit_ratio"]) if worst else "–", worst["pair"] if worst else ""),
        Metric("exposure", "Exposure", exposure(trades, start, end), pct(exposure(trades, start, end)),
               "time with a trade open", better=0),
        Metric("market_change", "Market change", None if market is None else number(market),
               "–" if market is None else pct(market), "buy and hold of the pairs", better=0),
    ]
    if "backtest_best_day_abs" in s:
        out.append(Metric("best_day", "Best / worst day", number(s["backtest_best_day_abs"]),
                          f"{money(s['backtest_best_day_abs'])} / {money(s.get('backtest_worst_day_abs'))}",
                          f"days {s.get('winning_days', 0)} W / {s.get('draw_days', 0)} D / {s.get('losing_days', 0)} L"))
    if "max_consecutive_wins" in s:
        out.append(Metric("streaks", "Max streak", None,
                          f"{s['max_consecutive_wins']} W / {s.get('max_consecutive_losses', 0)} L", "consecutive trades",
                          better=0))
    return out


def group_stats(trades: list[dict[str, Any]], key: Callable[[dict[str, Any]], Any], start_balance: float,
                total: bool = True) -> list[dict[str, Any]]:
    """Trades grouped by ``key`` in the shape of Freqtrade's rows (results_per_pair, ...)."""
    groups: OrderedDict[Any, list[dict[str, Any]]] = OrderedDict()
    for t in trades:
        groups.setdefault(key(t), []).append(t)
    rows = [_row(k, ts, start_balance) for k, ts in groups.items()]
    rows.sort(key=lambda r: r["profit_total_abs"], reverse=True)
    if total and trades:
        rows.append(_row("TOTAL", trades, start_balance))
    return rows


def _row(key: Any, trades: list[dict[str, Any]], start_balance: float) -> dict[str, Any]:
    n = len(trades)
    profit = sum(t["profit_abs"] for t in trades)
    wins = sum(t["profit_abs"] > 0 for t in trades)
    losses = sum(t["profit_abs"] < 0 for t in trades)
    minutes = sum(t["duration_min"] for t in trades) / n if n else 0.0
    return {"key": key, "trades": n, "profit_mean": sum(t["profit_ratio"] for t in trades) / n if n else 0.0,
            "profit_total_abs": profit, "profit_total": profit / start_balance if start_balance else 0.0,
            "duration_avg": duration(minutes), "wins": wins, "draws": n - wins - losses, "losses": losses,
            "winrate": wins / n if n else 0.0}


def periods(run: RunData, period: str) -> list[dict[str, Any]]:
    """Freqtrade's periodic breakdown (day, week, month) with the balance after each period."""
    rows = (run.stats.get("periodic_breakdown") or {}).get(period)
    if rows is None:
        rows = _breakdown_from_trades(run.trades, period)
    balance, out = run.start_balance, []
    for row in rows:
        start = balance
        balance += number(row.get("profit_abs"))
        out.append({**row, "return": (balance - start) / start if start else 0.0, "balance": balance})
    return out


def _breakdown_from_trades(trades: list[dict[str, Any]], period: str) -> list[dict[str, Any]]:
    def bucket(ts: float) -> str:
        when = utc(ts)
        if period == "month":
            return when.strftime("01/%m/%Y")
        if period == "week":  # by the week's Monday (Freqtrade labels it by the Monday that ends it)
            when -= timedelta(days=when.weekday())
        return when.strftime("%d/%m/%Y")

    out: OrderedDict[str, dict[str, Any]] = OrderedDict()
    for t in trades:
        row = out.setdefault(bucket(t["close_ts"]), {"date": bucket(t["close_ts"]), "profit_abs": 0.0, "wins": 0,
                                                     "draws": 0, "losses": 0, "trades": 0, "_gain": 0.0, "_loss": 0.0})
        row["profit_abs"] += t["profit_abs"]
        row["trades"] += 1
        row["wins" if t["profit_abs"] > 0 else "losses" if t["profit_abs"] < 0 else "draws"] += 1
        row["_gain" if t["profit_abs"] > 0 else "_loss"] += abs(t["profit_abs"])
    for row in out.values():
        gain, loss = row.pop("_gain"), row.pop("_loss")
        row["profit_factor"] = gain / loss if loss else 0.0
    return list(out.values())


def histogram(values: list[float], bins: int = 20) -> list[tuple[float, float, int]]:
    if not values:
        return []
    lo, hi = min(values), max(values)
    if hi == lo:
        return [(lo, hi, len(values))]
    step = (hi - lo) / bins
    counts = [0] * bins
    for v in values:
        counts[min(int((v - lo) / step), bins - 1)] += 1
    return [(lo + i * step, lo + (i + 1) * step, c) for i, c in enumerate(counts)]


def no_trades_reasons(run: RunData) -> list[str]:
    """Why a run made no trades, from what it recorded; the last resort says what was ruled out."""
    s, summary = run.stats, run.summary
    warnings = summary.get("warnings") or {}
    reasons = []
    for kind, what in (("stake_below_minimum", "entries were refused: the stake is below the pair's minimum"),
                       ("no_data", "a pair had no candles in the range"),
                       ("informative_empty", "an informative dataframe was empty")):
        if kind in warnings:
            reasons.append(f"{what} ({warnings[kind].get('count')}×; first: {warnings[kind].get('first')})")
    for kind, info in warnings.items():
        if kind.startswith("strategy_callback_error"):
            reasons.append(f"the strategy's {kind.split(':', 1)[-1]} raised ({info.get('count')}×; first: {info.get('first')})")
    if (summary.get("data_quality") or {}).get("missing_informative"):
        reasons.append("informative data was missing (ALLOW_MISSING_INFORMATIVE): "
                       + "; ".join(summary["data_quality"]["missing_informative"]))
    max_open = s.get("max_open_trades_setting", (summary.get("stake") or {}).get("max_open_trades"))
    if max_open is not None and number(max_open, -1) == 0:
        reasons.append("max_open_trades is 0: no trade may open")
    for key, what in (("rejected_signals", "entry signals were rejected (max_open_trades reached or the pair locked)"),
                      ("timedout_entry_orders", "entry orders timed out unfilled"),
                      ("canceled_entry_orders", "entry orders were cancelled")):
        if number(s.get(key)) > 0:
            reasons.append(f"{s[key]} {what}")
    if not reasons:
        locked = " (protections ran and may have locked every pair)" if (summary.get("protections") or {}).get("ran") else ""
        reasons.append("the strategy gave no entry signal that Freqtrade filled in this period: no stake, data, "
                       f"callback or order problem was recorded, so its entry conditions never held{locked}")
    return reasons
