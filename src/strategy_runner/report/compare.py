"""comparison.html: several runs (a sweep's items, a regression suite's cases) side by side:
the same headline metrics as each run's report, sortable, and their equity curves on one chart.

Reads only each run's light files (backtest-result.json, trades.csv), so a sweep of
thousands of items compares in seconds; every row links to that run's own report.html.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .data import equity_series, load_run
from .metrics import Metric, headline
from .page import page, section
from .series import thin
from .svg import Series, esc, line_chart

COMPARISON = "comparison.html"
#: Curves drawn on the one chart (the best by the ranking metric): more is unreadable.
MAX_CURVES = 12
CURVE_BUCKETS = 250
PALETTE = ("#3a7bd5", "#e07b00", "#2e9e6b", "#b42318", "#7b4fd1", "#0f9bb3", "#c2409a", "#6b7a1f", "#8a5a2b",
           "#1d2330", "#d4a017", "#5b6475")


@dataclass(frozen=True)
class Item:
    """One run to compare: its label (what differs: parameters, pairs, range), and where its
    results are; or, with no results, why (status and error)."""
    run_id: str
    label: str
    run_dir: Path | None = None
    problem: str = ""


def _value(metrics: list[Metric], key: str) -> float | None:
    return next((m.value for m in metrics if m.key == key), None)


def _cell(m: Metric, best: bool) -> str:
    value = "" if m.value is None else f' data-v="{m.value:.10g}"'
    return f'<td{value}{" class=best" if best else ""}>{esc(m.text)}</td>'


def render_comparison(title: str, items: list[Item], metric: str = "profit_total") -> str:
    rows: list[tuple[Item, list[Metric], list[tuple[float, float]]]] = []
    missing = [i for i in items if i.run_dir is None]
    for item in items:
        if item.run_dir is None:
            continue
        try:
            run = load_run(item.run_dir, with_freqtrade_files=False)
        except (OSError, ValueError) as exc:
            missing.append(Item(item.run_id, item.label, problem=f"results unreadable: {exc}"))
            continue
        start, end = run.period
        curve = equity_series(run.trades, run.start_balance, start)
        if curve:
            curve.append((end, curve[-1][1]))
        growth = [(t, (v / run.start_balance - 1) * 100) for t, v in curve] if run.start_balance else []
        rows.append((item, headline(run), growth))

    lower_is_better = any(m.key == metric and m.better < 0 for r in rows[:1] for m in r[1])

    def score(row: tuple[Item, list[Metric], list[tuple[float, float]]]) -> float:
        value = _value(row[1], metric)
        return float("-inf") if value is None else -value if lower_is_better else value

    rows.sort(key=score, reverse=True)
    columns = rows[0][1] if rows else []  # every run has the same headline metrics (light files only)
    best: dict[str, float] = {}
    for m in columns:
        values = [v for _i, ms, _c in rows for v in [_value(ms, m.key)] if v is not None]
        if values and m.better:
            best[m.key] = max(values) if m.better > 0 else min(values)
    head = "".join(f"<th>{esc(m.label)}</th>" for m in columns)
    body = []
    for rank, (item, metrics, _curve) in enumerate(rows, start=1):
        link = f'<a href="{esc(_relative_report(item))}">{esc(item.run_id)}</a>'
        cells = "".join(_cell(m, m.value is not None and best.get(m.key) == m.value) for m in metrics)
        body.append(f'<tr><td data-v="{rank}">{rank}</td><td class="l">{link}<br><small>{esc(item.label)}</small></td>{cells}</tr>')
    table = (f'<div class="scroll"><table class="sortable compare"><thead><tr><th>#</th>'
             f'<th class="l">Run (what differs)</th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>')
    curves = [Series(item.run_id, thin(curve, CURVE_BUCKETS), PALETTE[i % len(PALETTE)], step=True)
              for i, (item, _m, curve) in enumerate(rows[:MAX_CURVES]) if curve]
    chart_note = (f'<p class="sub">The best {MAX_CURVES} of {len(rows)} by {esc(metric)}.</p>' if len(rows) > MAX_CURVES
                  else "")
    missing_rows = "".join(f"<li><b>{esc(i.run_id)}</b> {esc(i.label)}: {esc(i.problem)}</li>" for i in missing)
    page_body = (
        f"<h1>{esc(title)}</h1><p class='sub'>{len(rows)} run(s) compared, ranked by {esc(metric)}"
        f"{f'; {len(missing)} without results' if missing else ''}. Click a column to sort; a run opens its own report.</p>"
        + section("compare-metrics", "Headline metrics side by side", table if rows else '<p class="empty">No run has results.</p>')
        + section("compare-equity", "Equity curves (return on the starting balance, %)",
                  line_chart(curves, "compare-equity", "Equity curves", suffix="%", baseline=0.0), chart_note)
        + (section("compare-missing", "Without results", f'<ul>{missing_rows}</ul>') if missing else ""))
    return page(title, page_body)


def _relative_report(item: Item) -> str:
    """The run's report, relative to the comparison (which sits in a sibling folder of the runs)."""
    return f"../{item.run_dir.name}/report.html" if item.run_dir else ""


def write_comparison(out_dir: Path, title: str, items: list[Item], metric: str = "profit_total") -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / COMPARISON
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(render_comparison(title, items, metric), encoding="utf-8")
    tmp.replace(out)
    return out
