"""HTML tables: Freqtrade's result rows (per pair, exit reason, enter tag, ...) the way its
backtesting report lays them out, and the periodic breakdown."""

from __future__ import annotations

from typing import Any

from .data import number
from .metrics import money
from .svg import esc


def sign(value: float) -> str:
    return "neg" if value < 0 else "pos"


def table(headers: list[str], rows: list[str], cls: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def result_rows(rows: list[dict[str, Any]], label: str, currency: str) -> str:
    """Freqtrade's columns: trades, avg profit %, total profit, total profit %, avg duration, W/D/L, win %."""
    if not rows:
        return '<p class="empty">None.</p>'
    body = []
    for r in rows:
        key = r.get("key")
        key = " / ".join(str(k) or "(none)" for k in key) if isinstance(key, list) else (str(key) if key != "" else "(none)")
        abs_ = number(r.get("profit_total_abs"))
        body.append(
            f'<tr class="{"total" if key == "TOTAL" else ""}"><td>{esc(key)}</td><td>{number(r.get("trades")):.0f}</td>'
            f'<td>{number(r.get("profit_mean")) * 100:.2f}</td><td class="{sign(abs_)}" data-v="{abs_:.6g}">{money(abs_)}</td>'
            f'<td>{number(r.get("profit_total")) * 100:.2f}</td><td>{esc(r.get("duration_avg", ""))}</td>'
            f'<td>{number(r.get("wins")):.0f} / {number(r.get("draws")):.0f} / {number(r.get("losses")):.0f}</td>'
            f'<td>{number(r.get("winrate")) * 100:.1f}</td></tr>')
    return table([label, "Trades", "Avg profit %", f"Tot profit {currency}".strip(), "Tot profit %", "Avg duration",
                  "W / D / L", "Win %"], body)


def period_rows(rows: list[dict[str, Any]], currency: str) -> str:
    if not rows:
        return '<p class="empty">No trades closed in any period.</p>'
    body = [
        f'<tr><td>{esc(r.get("date"))}</td><td>{number(r.get("trades")):.0f}</td>'
        f'<td class="{sign(number(r.get("profit_abs")))}">{money(r.get("profit_abs"))}</td>'
        f'<td class="{sign(r["return"])}">{r["return"] * 100:.2f}%</td><td>{money(r["balance"])}</td>'
        f'<td>{number(r.get("wins")):.0f} / {number(r.get("draws")):.0f} / {number(r.get("losses")):.0f}</td>'
        f'<td>{number(r.get("profit_factor")):.2f}</td></tr>'
        for r in rows]
    return table(["Period", "Trades", f"Profit {currency}".strip(), "Return", "Balance after", "W / D / L",
                  "Profit factor"], body)
