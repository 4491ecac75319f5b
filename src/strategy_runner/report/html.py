"""Build runs/<RUN_ID>/report.html from backtest-result.json and trades.csv.

Everything is inline (SVG charts drawn here, CSS, a few lines of JS), so the file opens
offline, from S3 or from MLflow's artifact view alike. Standard library only.
"""

from __future__ import annotations

import csv
import html
import json
import math
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import Any

REPORT = "report.html"
W, H = 760, 240  # chart size in px
PAD_L, PAD_R, PAD_T, PAD_B = 64, 16, 14, 34


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _float(value: Any, default: float = 0.0) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return default
    return out if math.isfinite(out) else default


def _date(text: str) -> datetime:
    return datetime.fromisoformat(text)


def read_trades(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    trades = []
    for row in rows:
        try:
            trades.append({
                "pair": row["pair"], "open": _date(row["open_date"]), "close": _date(row["close_date"]),
                "profit_abs": _float(row.get("profit_abs")), "profit_ratio": _float(row.get("profit_ratio")),
                "duration_min": _float(row.get("trade_duration")), "is_short": row.get("is_short") == "True",
                "exit_reason": row.get("exit_reason", ""),
            })
        except (KeyError, ValueError):
            continue
    return sorted(trades, key=lambda t: t["close"])


# --- numbers -------------------------------------------------------------------------
def equity_series(trades: list[dict[str, Any]], start_balance: float) -> list[tuple[datetime, float]]:
    points = []
    equity = start_balance
    for t in trades:
        equity += t["profit_abs"]
        points.append((t["close"], equity))
    return points


def drawdown_series(equity: list[tuple[datetime, float]], start_balance: float) -> list[tuple[datetime, float]]:
    peak = start_balance
    out = []
    for when, value in equity:
        peak = max(peak, value)
        out.append((when, (value - peak) / peak * 100 if peak else 0.0))
    return out


def monthly_returns(trades: list[dict[str, Any]], start_balance: float) -> "OrderedDict[str, tuple[float, float]]":
    """month -> (profit in stake currency, return in % of the equity at the month's start)."""
    months: OrderedDict[str, tuple[float, float]] = OrderedDict()
    equity = start_balance
    by_month: OrderedDict[str, float] = OrderedDict()
    for t in trades:
        key = t["close"].strftime("%Y-%m")
        by_month[key] = by_month.get(key, 0.0) + t["profit_abs"]
    for key, profit in by_month.items():
        months[key] = (profit, profit / equity * 100 if equity else 0.0)
        equity += profit
    return months


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


# --- SVG -----------------------------------------------------------------------------
def _ticks(lo: float, hi: float, n: int = 5, integers: bool = False) -> list[float]:
    if hi == lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    steps = (1, 2, 5, 10) if integers else (1, 2, 2.5, 5, 10)
    step = next(m * mag for m in steps if m * mag >= raw)
    if integers:
        step = max(step, 1.0)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    if float(v).is_integer() and abs(v) < 1e6:
        return f"{v:,.0f}"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}" if abs(v) >= 1 else f"{v:.3g}"


def _frame(title: str, body: str, kind: str) -> str:
    return (f'<svg class="chart" data-chart="{kind}" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
            f'role="img" aria-label="{_esc(title)}" xmlns="http://www.w3.org/2000/svg">{body}</svg>')


def _y_axis(lo: float, hi: float, y: Any, suffix: str = "", integers: bool = False) -> str:
    out = []
    for v in _ticks(lo, hi, integers=integers):
        yy = y(v)
        out.append(f'<line class="grid" x1="{PAD_L}" x2="{W - PAD_R}" y1="{yy:.1f}" y2="{yy:.1f}"/>'
                   f'<text class="tick" x="{PAD_L - 6}" y="{yy + 4:.1f}" text-anchor="end">{_fmt(v)}{suffix}</text>')
    return "".join(out)


def time_chart(points: list[tuple[datetime, float]], kind: str, title: str, *, area: bool = False,
               suffix: str = "", baseline: float | None = None) -> str:
    if not points:
        return f'<p class="empty">No trades: nothing to draw for {_esc(title.lower())}.</p>'
    xs = [p[0].timestamp() for p in points]
    ys = [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    lo, hi = min(ys + ([baseline] if baseline is not None else [])), max(ys + ([baseline] if baseline is not None else []))
    if hi == lo:
        hi, lo = hi + 1, lo - 1
    margin = (hi - lo) * 0.05
    lo, hi = lo - margin, hi + margin

    def x(v: float) -> float:
        return PAD_L + (v - x0) / (x1 - x0 or 1) * (W - PAD_L - PAD_R)

    def y(v: float) -> float:
        return PAD_T + (hi - v) / (hi - lo) * (H - PAD_T - PAD_B)

    # Step line: equity changes when a trade closes.
    path = [f"M{x(xs[0]):.1f},{y(ys[0]):.1f}"]
    for i in range(1, len(xs)):
        path.append(f"H{x(xs[i]):.1f}V{y(ys[i]):.1f}")
    body = [_y_axis(lo, hi, y, suffix)]
    n_labels = min(6, len(points))
    for i in range(n_labels):
        ts = x0 + (x1 - x0) * i / max(n_labels - 1, 1)
        label = datetime.fromtimestamp(ts, tz=points[0][0].tzinfo).strftime("%Y-%m-%d")
        anchor = "start" if i == 0 else "end" if i == n_labels - 1 else "middle"
        body.append(f'<text class="tick" x="{x(ts):.1f}" y="{H - 12}" text-anchor="{anchor}">{label}</text>')
    if baseline is not None:
        body.append(f'<line class="base" x1="{PAD_L}" x2="{W - PAD_R}" y1="{y(baseline):.1f}" y2="{y(baseline):.1f}"/>')
    line = "".join(path)
    if area:
        zero = y(0.0 if baseline is None else baseline)
        body.append(f'<path class="area" d="{line}V{zero:.1f}H{x(xs[0]):.1f}Z"/>')
    body.append(f'<path class="line {kind}" d="{line}"><title>{_esc(title)}</title></path>')
    return _frame(title, "".join(body), kind)


def bar_chart(bars: list[tuple[str, float, str]], kind: str, title: str, *, suffix: str = "",
              counts: bool = False, negative: set[int] | None = None) -> str:
    """bars: (label, value, tooltip); negative values (or bars listed in ``negative``) in red."""
    if not bars:
        return f'<p class="empty">No trades: nothing to draw for {_esc(title.lower())}.</p>'
    values = [b[1] for b in bars]
    lo, hi = min(0.0, *values), max(0.0, *values)
    if hi == lo:
        hi = lo + 1
    lo, hi = lo - (hi - lo) * 0.05 * (lo < 0), hi + (hi - lo) * 0.05

    def y(v: float) -> float:
        return PAD_T + (hi - v) / (hi - lo) * (H - PAD_T - PAD_B)

    slot = (W - PAD_L - PAD_R) / len(bars)
    width = max(slot * 0.8, 1.0)
    body = [_y_axis(lo, hi, y, suffix, integers=counts)]
    every = max(1, math.ceil(len(bars) / 12))
    for i, (label, value, tip) in enumerate(bars):
        x = PAD_L + i * slot + (slot - width) / 2
        top, bottom = y(max(value, 0.0)), y(min(value, 0.0))
        cls = "neg" if value < 0 or i in (negative or set()) else "pos"
        body.append(f'<rect class="bar {cls}" x="{x:.1f}" y="{top:.1f}" width="{width:.1f}" '
                    f'height="{max(bottom - top, 0.5):.1f}"><title>{_esc(tip)}</title></rect>')
        if i % every == 0:
            body.append(f'<text class="tick" x="{x + width / 2:.1f}" y="{H - 12}" text-anchor="middle">{_esc(label)}</text>')
    body.append(f'<line class="base" x1="{PAD_L}" x2="{W - PAD_R}" y1="{y(0):.1f}" y2="{y(0):.1f}"/>')
    return _frame(title, "".join(body), kind)


def histogram_chart(values: list[float], kind: str, title: str, unit: str) -> str:
    bins = histogram(values)
    bars = [(_fmt((a + b) / 2), float(c), f"{_fmt(a)} to {_fmt(b)} {unit}: {c} trades") for a, b, c in bins]
    negative = {i for i, (a, b, _c) in enumerate(bins) if (a + b) / 2 < 0} if kind == "profit" else set()
    return bar_chart(bars, kind, title, counts=True, negative=negative)


# --- page ----------------------------------------------------------------------------
CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:820px;color:#1d2330;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #e3e6ec;padding-bottom:4px}
.sub{color:#5b6475;margin:0 0 16px}.warn{background:#fff4e5;border:1px solid #f0b45a;padding:8px 12px;margin:0 0 16px}.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:8px}
.card{border:1px solid #e3e6ec;border-radius:6px;padding:8px 10px}.card b{display:block;font-size:18px}
.card span{color:#5b6475;font-size:12px}table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:4px 8px;border-bottom:1px solid #eef0f4;text-align:right}th:first-child,td:first-child{text-align:left}
th{background:#f6f7f9;font-weight:600}.neg{color:#b42318;fill:#d9534f}.pos{color:#067647;fill:#3a7bd5}
svg.chart{display:block;max-width:100%;height:auto}.grid{stroke:#eef0f4}.tick{fill:#5b6475;font-size:11px}
.base{stroke:#9aa3b2;stroke-dasharray:3 3}.line{fill:none;stroke:#3a7bd5;stroke-width:1.6}
.line.drawdown{stroke:#b42318}.area{fill:#d9534f;opacity:.18}.empty{color:#5b6475;font-style:italic}
.ident td{font-family:ui-monospace,monospace;font-size:12px;text-align:left;word-break:break-all}
#status{color:#5b6475;font-size:12px;margin-top:24px}
"""

# Marks the page as rendered (the headless-browser test reads these attributes) and
# reports any script error on the page itself.
JS = """
(function(){
  var errors=[];
  window.addEventListener('error',function(e){errors.push(String(e.message));document.body.dataset.errors=errors.join('; ');});
  document.addEventListener('DOMContentLoaded',function(){
    var charts=document.querySelectorAll('svg.chart'),drawn=0;
    charts.forEach(function(svg){var b=svg.getBBox();if(b.width>0&&b.height>0&&svg.querySelector('path,rect'))drawn++;});
    document.body.dataset.charts=String(charts.length);document.body.dataset.drawn=String(drawn);
    document.getElementById('status').textContent=drawn+' of '+charts.length+' charts drawn';
  });
})();
"""


def _pct(v: Any) -> str:
    return f"{_float(v) * 100:.2f}%"


def computed_from(summary: dict[str, Any]) -> tuple[str, str]:
    """The files read with their data quality, protections; and a banner of the warnings."""
    warnings = summary.get("warnings") or {}
    quality = summary.get("data_quality") or {}
    missing = quality.get("missing_informative") or []
    banner = ""
    markets = summary.get("markets") or {}
    inferred = markets.get("inferred_pairs") or []
    if inferred:  # guessed fees, ticks and limits: say so where the numbers are
        warnings = {**warnings, "inferred_markets": {"count": len(inferred), "first": (
            f"{', '.join(inferred)}: markets built by MARKETS=infer (fees, ticks and limits are defaults)")}}
    if warnings or missing:
        items = "".join(f"<li><b>{_esc(k)}</b> × {_esc(v.get('count'))}: {_esc(v.get('first'))}</li>"
                        for k, v in warnings.items())
        allowed = ("<li>informative data missing, allowed by ALLOW_MISSING_INFORMATIVE: "
                   + _esc("; ".join(missing)) + "</li>") if missing else ""
        banner = f'<div class="warn"><b>Warnings that may change this result</b><ul>{items}{allowed}</ul></div>'
    per_file = quality.get("per_file") or {}
    rows = "".join(
        f"<tr><td>{_esc(f.get('file'))}</td><td>{_esc(f.get('role'))}</td><td>{_esc(f.get('pair'))}</td>"
        f"<td>{_esc(f.get('timeframe'))}</td><td>{_esc(f.get('candle_type'))}</td>"
        f"<td>{_esc((per_file.get(f.get('file')) or {}).get('rows', 'missing'))}</td>"
        f"<td>{_esc((per_file.get(f.get('file')) or {}).get('gaps', '-'))}</td>"
        f"<td>{_esc((per_file.get(f.get('file')) or {}).get('duplicates', '-'))}</td></tr>"
        for f in quality.get("files") or []
    )
    protections = summary.get("protections") or {}
    ran = ("ran: " + ", ".join(protections.get("defined") or []) if protections.get("ran") else
           "not run" + (" (the strategy defines " + ", ".join(protections["defined"]) + "; ENABLE_PROTECTIONS "
                        "or the config's enable_protections turns them on)" if protections.get("defined") else ""))
    kind = (summary.get("data_provenance") or {}).get("kind")
    origin = {"synthetic": "synthetic sample data (strategy-runner generate-data), not a market's history",
              "mixed": "partly synthetic sample data (strategy-runner generate-data)",
              "user": "your data"}.get(kind, "unknown")
    source = markets.get("source", "unknown")
    section = f"""<h2>Data read (checked before the backtest)</h2>
<p class="sub">candles: <b>{_esc(origin)}</b> · markets: {_esc(source)}{_esc(f" (+{len(inferred)} inferred)" if inferred else "")}</p>
<p class="sub">{_esc(quality.get('gaps', 0))} missing candle(s) filled by Freqtrade, {_esc(quality.get('duplicates', 0))} duplicate(s) dropped · protections {_esc(ran)}</p>
<table><tr><th>File</th><th>Role</th><th>Pair</th><th>Timeframe</th><th>Candles</th><th>Rows in range</th><th>Gaps</th><th>Duplicates</th></tr>{rows}</table>"""
    return section, banner


def render(summary: dict[str, Any], trades: list[dict[str, Any]]) -> str:
    metrics = summary.get("metrics") or {}
    stake = summary.get("stake") or {}
    currency = stake.get("stake_currency") or ""
    start_balance = _float(stake.get("dry_run_wallet"), 1000.0)
    equity = equity_series(trades, start_balance)
    drawdown = drawdown_series(equity, start_balance)
    if equity:  # start both curves at the first trade's open with the starting balance
        equity.insert(0, (trades[0]["open"], start_balance))
        drawdown.insert(0, (trades[0]["open"], 0.0))
    months = monthly_returns(trades, start_balance)
    cards = [
        ("Total profit", _pct(metrics.get("profit_total")), f"{_float(metrics.get('profit_total_abs')):,.2f} {currency}"),
        ("Max drawdown", _pct(metrics.get("max_drawdown_account")), f"{_float(metrics.get('max_drawdown_abs')):,.2f} {currency}"),
        ("Trades", f"{_float(metrics.get('total_trades')):.0f}", f"win rate {_pct(metrics.get('winrate'))}"),
        ("Sharpe", f"{_float(metrics.get('sharpe')):.2f}", f"profit factor {_float(metrics.get('profit_factor')):.2f}"),
    ]
    per_pair_rows = "".join(
        f"<tr><td>{_esc(r.get('pair'))}</td><td>{_float(r.get('trades')):.0f}</td>"
        f"<td class=\"{'neg' if _float(r.get('profit_total_abs')) < 0 else 'pos'}\">{_float(r.get('profit_total_abs')):,.2f}</td>"
        f"<td>{_pct(r.get('profit_total'))}</td><td>{_pct(r.get('profit_mean'))}</td><td>{_pct(r.get('winrate'))}</td>"
        f"<td>{_float(r.get('wins')):.0f} / {_float(r.get('draws')):.0f} / {_float(r.get('losses')):.0f}</td></tr>"
        for r in summary.get("per_pair") or []
    )
    month_rows = "".join(
        f"<tr><td>{m}</td><td class=\"{'neg' if p < 0 else 'pos'}\">{p:,.2f}</td><td>{r:.2f}%</td></tr>"
        for m, (p, r) in months.items()
    )
    identity = summary.get("identity") or {}
    ident_rows = "".join(
        f"<tr><th>{_esc(k)}</th><td>{_esc(identity.get(k))}</td></tr>"
        for k in ("data_fingerprint", "strategy_hash", "config_hash", "freqtrade_version", "runner_version", "image")
    )
    cache = summary.get("cache") or {}
    cached = (f" · result reused from cache (run {_esc(cache.get('source_run_id'))})" if cache.get("hit") else "")
    inputs_section, warnings_banner = computed_from(summary)
    title = f"{summary.get('strategy')} · {summary.get('timerange')}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>{_esc(title)} · {_esc(summary.get('run_id'))}</title><style>{CSS}</style><script>{JS}</script></head>
<body>
<h1>{_esc(title)}</h1>
<p class="sub">run {_esc(summary.get('run_id'))} · {_esc(summary.get('trading_mode'))} · {_esc(', '.join(summary.get('pairs') or []))} ·
{_esc(summary.get('timeframe'))} (timeframe from {_esc(summary.get('timeframe_source') or 'the config')}) · {_esc(summary.get('backtest_start'))} to {_esc(summary.get('backtest_end'))}{cached}</p>
{warnings_banner}
<div class="cards">{''.join(f'<div class="card"><span>{_esc(a)}</span><b>{_esc(b)}</b><span>{_esc(c)}</span></div>' for a, b, c in cards)}</div>
<h2>Equity ({_esc(currency)})</h2>
{time_chart(equity, "equity", "Equity curve", baseline=start_balance)}
<h2>Drawdown (% below the running peak)</h2>
{time_chart(drawdown, "drawdown", "Drawdown", area=True, suffix="%")}
<h2>Per pair</h2>
<table><tr><th>Pair</th><th>Trades</th><th>Profit ({_esc(currency)})</th><th>Profit</th><th>Mean/trade</th><th>Win rate</th><th>W / D / L</th></tr>{per_pair_rows}</table>
<h2>Monthly returns</h2>
{bar_chart([(m, r, f"{m}: {r:.2f}% ({p:,.2f} {currency})") for m, (p, r) in months.items()], "monthly", "Monthly returns", suffix="%")}
<table><tr><th>Month</th><th>Profit ({_esc(currency)})</th><th>Return</th></tr>{month_rows}</table>
<h2>Trade duration (minutes)</h2>
{histogram_chart([t["duration_min"] for t in trades], "duration", "Trade duration", "min")}
<h2>Profit per trade (%)</h2>
{histogram_chart([t["profit_ratio"] * 100 for t in trades], "profit", "Profit distribution", "%")}
{inputs_section}
<h2>Identity (what determines this result)</h2>
<table class="ident">{ident_rows}</table>
<p id="status">charts not checked (scripts off)</p>
</body></html>
"""


def write_report(run_dir: Path) -> Path:
    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "backtest-result.json").read_text())
    trades_name = (summary.get("files") or {}).get("trades") or "trades.csv"
    page = render(summary, read_trades(run_dir / trades_name))
    out = run_dir / REPORT
    tmp = out.with_suffix(".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return out
