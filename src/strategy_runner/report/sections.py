"""The sections of a run's report, each a ``<section data-section=...>`` the page's check counts."""

from __future__ import annotations

from typing import Any

from . import candles as candle_data
from .data import RunData, equity_series, number, utc
from .metrics import Metric, group_stats, histogram, money, no_trades_reasons, pct, periods
from .page import json_script, section
from .series import drawdown_series, thin
from .svg import Series, bar_chart, candle_chart, esc, histogram_chart, line_chart, marker_defs
from .tables import period_rows, result_rows, table

#: Points per equity, benchmark and drawdown line (each keeps up to 4 per bucket: shape, highs and lows).
CURVE_BUCKETS = 400
#: Rows of the day table (a year); with the other bounds, what the report takes whatever its range.
MAX_DAY_ROWS = 366


def _fact(label: str, value: Any) -> str:
    return f"<div><span>{esc(label)}</span><b>{esc(value)}</b></div>"


def run_facts(run: RunData) -> str:
    s, st = run.summary, run.stats
    stake = s.get("stake") or {}
    provenance = (s.get("data_provenance") or {}).get("kind")
    candles = {"synthetic": "synthetic sample data", "mixed": "partly synthetic sample data",
               "user": "real (your data)"}.get(provenance, "unknown")
    markets = s.get("markets") or {}
    inferred = markets.get("inferred_pairs") or []
    leverages = sorted({t["leverage"] for t in run.trades})
    mode = s.get("trading_mode") or st.get("trading_mode") or "spot"
    lev = ("1 (spot)" if mode == "spot" else
           "–" if not leverages else f"{leverages[0]:g}" if len(leverages) == 1 else f"{leverages[0]:g} to {leverages[-1]:g}")
    start, end = run.period
    final = number(st.get("final_balance"), run.start_balance + sum(t["profit_abs"] for t in run.trades))
    facts = [
        ("Strategy", s.get("strategy")), ("Timeframe", f"{s.get('timeframe')} (from {s.get('timeframe_source') or 'the config'})"),
        ("Pairs", ", ".join(s.get("pairs") or [])), ("Period", f"{utc(start):%Y-%m-%d %H:%M} to {utc(end):%Y-%m-%d %H:%M}"),
        ("Trading mode", mode + (f" ({st['margin_mode']} margin)" if st.get("margin_mode") else "")), ("Leverage", lev),
        ("Stake", f"{stake.get('stake_amount')} {run.currency}"), ("Max open trades", stake.get("max_open_trades")),
        ("Starting balance", money(run.start_balance, run.currency)), ("Final balance", money(final, run.currency)),
        ("Candles", candles),
        ("Markets", ("snapshot" if markets.get("source") not in (None, "live") else markets.get("source") or "unknown")
         + (f" + {len(inferred)} inferred" if inferred else "")),
    ]
    params = s.get("strategy_params") or {}
    if params:
        facts.append(("Parameters", " ".join(f"{k}={v}" for k, v in params.items())))
    if (s.get("sweep") or {}).get("sweep_id"):
        facts.append(("Sweep", s["sweep"]["sweep_id"]))
    cache = s.get("cache") or {}
    if cache.get("hit"):
        facts.append(("Result", f"reused from the cache (run {cache.get('source_run_id')})"))
    return section("run", "", f'<div class="facts">{"".join(_fact(a, b) for a, b in facts)}</div>')


def warnings(run: RunData) -> str:
    """What the run recorded that may change its result; and, with no trades, why none."""
    s = run.summary
    recorded = dict(s.get("warnings") or {})
    quality = s.get("data_quality") or {}
    inferred = (s.get("markets") or {}).get("inferred_pairs") or []
    if inferred:  # guessed fees, ticks and limits: say so where the numbers are
        recorded["inferred_markets"] = {"count": len(inferred), "first": (
            f"{', '.join(inferred)}: markets built by MARKETS=infer (fees, ticks and limits are defaults)")}
    items = [f"<li><b>{esc(k)}</b> × {esc(v.get('count'))}: {esc(v.get('first'))}</li>" for k, v in recorded.items()]
    items += [f"<li>{esc(note)}</li>" for note in run.notes]
    if quality.get("missing_informative"):
        items.append("<li>informative data missing, allowed by ALLOW_MISSING_INFORMATIVE: "
                     + esc("; ".join(quality["missing_informative"])) + "</li>")
    if quality.get("gaps") or quality.get("duplicates"):
        items.append(f"<li>data quality: {esc(quality.get('gaps', 0))} missing candle(s) filled flat by Freqtrade, "
                     f"{esc(quality.get('duplicates', 0))} duplicate(s) dropped (per file under Data read)</li>")
    if (s.get("data_provenance") or {}).get("kind") in ("synthetic", "mixed"):
        items.append("<li>the candles are synthetic sample data (strategy-runner generate-data): "
                     "not a market's history, not for judging a strategy</li>")
    out = ""
    if items:
        out += section("warnings", "", f'<div class="warn"><b>Warnings that may change this result</b><ul>{"".join(items)}</ul></div>')
    if not run.trades:
        reasons = "".join(f"<li>{esc(r)}</li>" for r in no_trades_reasons(run))
        out += section("no-trades", "", f'<div class="warn"><b>No trades: why</b><ul>{reasons}</ul></div>')
    return out


def metric_cards(metrics: list[Metric]) -> str:
    cards = []
    for m in metrics:
        cls = sign_of(m.value - m.neutral) if m.better == 1 and m.value is not None else ""  # a drawdown is never "good"
        cards.append(f'<div class="card" data-metric="{m.key}"><span>{esc(m.label)}</span>'
                     f'<b class="{cls}">{esc(m.text)}</b><small>{esc(m.detail)}</small></div>')
    return f'<div class="cards">{"".join(cards)}</div>'


def sign_of(value: float) -> str:
    return "neg" if value < 0 else "pos" if value > 0 else ""


def equity(run: RunData) -> str:
    start, end = run.period
    balance = equity_series(run.trades, run.start_balance, start)
    if balance:
        balance.append((end, balance[-1][1]))  # the balance holds to the end of the period
    start_balance = run.start_balance
    bench = [(ts, start_balance * (1 + rel)) for ts, rel in run.market_change]
    lines = [Series("strategy: closed-trade balance", thin(balance, CURVE_BUCKETS), "line", step=True)]
    if bench:
        lines.append(Series("buy and hold of the pairs (Freqtrade's market change)", thin(bench, CURVE_BUCKETS), "bench"))
    body = line_chart(lines, "equity", "Equity and benchmark", baseline=run.start_balance)
    market = run.stats.get("market_change")
    made = run.stats.get("profit_total", (run.summary.get("metrics") or {}).get("profit_total"))
    sub = (f'<p class="sub">The benchmark holds the pairs in equal parts from the first candle: the market moved '
           f'{pct(market)} while the strategy made {pct(made)}.</p>' if market is not None else
           '<p class="sub">No market-change series in the Freqtrade result: no benchmark drawn.</p>')
    dd = drawdown_series(balance)
    body += "<h3>Drawdown (% below the running peak of the balance)</h3>" + line_chart(
        [Series("drawdown", thin(dd, CURVE_BUCKETS), "dd", step=True)] if run.trades else [],
        "drawdown", "Drawdown", suffix="%", baseline=0.0, area=True)
    return section("equity", f"Equity ({run.currency}) against buy and hold", body, sub)


def breakdowns(run: RunData) -> str:
    """Freqtrade's backtesting-report tables; groups its stats do not have come from the trades."""
    st, cur, bal = run.stats, run.currency, run.start_balance

    def rows(key: str, by: Any) -> list[dict[str, Any]]:
        return st[key] if key in st else group_stats(run.trades, by, bal)

    sides = group_stats(run.trades, lambda t: "short" if t["is_short"] else "long", bal)
    parts = [
        "<h3>Per pair</h3>", result_rows(rows("results_per_pair", lambda t: t["pair"]), "Pair", cur),
        "<h3>Exit reasons</h3>", result_rows(rows("exit_reason_summary", lambda t: t["exit_reason"]), "Exit reason", cur),
        "<h3>Enter tags</h3>", result_rows(rows("results_per_enter_tag", lambda t: t["enter_tag"]), "Enter tag", cur),
        "<h3>Long versus short</h3>", result_rows(sides, "Side", cur),
    ]
    if st.get("mix_tag_stats"):
        parts += ["<h3>Enter tag and exit reason</h3>", result_rows(st["mix_tag_stats"], "Enter tag / exit reason", cur)]
    if st.get("left_open_trades") and any(number(r.get("trades")) for r in st["left_open_trades"]):
        parts += ["<h3>Left open at the end (closed by force_exit)</h3>", result_rows(st["left_open_trades"], "Pair", cur)]
    return section("breakdown", "Results by pair, exit reason, enter tag and side", "".join(parts))


def period_tables(run: RunData) -> str:
    buttons, tables = [], []
    for name in ("day", "week", "month"):
        rows = periods(run, name)
        note = ""
        if name == "day" and len(rows) > MAX_DAY_ROWS:  # years of days would be most of the file
            note = (f'<p class="sub">The last {MAX_DAY_ROWS} of {len(rows)} days; weeks and months cover '
                    "the whole period.</p>")
            rows = rows[-MAX_DAY_ROWS:]
        buttons.append(f'<button data-show="period-{name}" class="{"on" if name == "month" else ""}">{name}</button>')
        tables.append(f'<div id="period-{name}" class="scroll"{"" if name == "month" else " hidden"}>'
                      f'{note}{period_rows(rows, run.currency)}</div>')
    months = periods(run, "month")
    chart = bar_chart([(r["date"][3:], r["return"] * 100, f"{r['date'][3:]}: {r['return'] * 100:.2f}% "
                        f"({money(r.get('profit_abs'), run.currency)})") for r in months], "monthly", "Monthly returns",
                      suffix="%")
    return section("periods", "Per period (Freqtrade's breakdown)",
                   f"{chart}<div class='tabs'>{''.join(buttons)}</div>{''.join(tables)}")


def futures(run: RunData) -> str:
    """Leverage, funding fees and liquidations: only for futures runs."""
    if (run.summary.get("trading_mode") or run.stats.get("trading_mode")) != "futures":
        return ""
    cur, bal = run.currency, run.start_balance
    by_leverage = group_stats(run.trades, lambda t: f"{t['leverage']:g}×", bal)
    funding = {}
    for t in run.trades:
        funding[t["pair"]] = funding.get(t["pair"], 0.0) + t["funding_fees"]
    total = sum(funding.values())
    liquidated = [t for t in run.trades if t["exit_reason"] == "liquidation"]
    funding_rows = [f"<tr><td>{esc(p)}</td><td class='{'neg' if v < 0 else 'pos'}'>{v:,.4f}</td></tr>"
                    for p, v in sorted(funding.items())]
    funding_rows.append(f"<tr class='total'><td>TOTAL</td><td>{total:,.4f}</td></tr>")
    body = (f'<p class="sub">{len(liquidated)} liquidation(s); funding fees {total:,.4f} {esc(cur)} in all '
            f'(negative: paid); margin mode {esc(run.stats.get("margin_mode") or "–")}.</p>'
            "<h3>By leverage</h3>" + result_rows(by_leverage, "Leverage", cur)
            + '<div class="split"><div><h3>Funding fees by pair</h3>'
            + table(["Pair", f"Funding fees {cur}".strip()], funding_rows)
            + "</div><div><h3>Liquidations</h3>"
            + (result_rows(group_stats(liquidated, lambda t: t["pair"], bal), "Pair", cur) if liquidated
               else '<p class="sub">No trade was liquidated.</p>') + "</div></div>")
    return section("futures", "Futures: leverage, funding fees, liquidations", body)


def distributions(run: RunData) -> str:
    return section("distributions", "Trade durations and profits", (
        "<h3>Duration (minutes)</h3>" + histogram_chart(histogram([t["duration_min"] for t in run.trades]),
                                                        "duration", "Trade duration", "min")
        + "<h3>Profit per trade (%)</h3>" + histogram_chart(histogram([t["profit_ratio"] * 100 for t in run.trades]),
                                                            "profit", "Profit distribution", "%", red_below_zero=True)))


def price_charts(run: RunData) -> str:
    if not run.trades:
        return ""
    traded = len({t["pair"] for t in run.trades})
    parts = []
    for chart in candle_data.pair_charts(run):
        pair = chart["pair"]
        count = len(chart["markers"]["long"]) + len(chart["markers"]["short"])
        if "missing" in chart:
            parts.append(f"<h3>{esc(pair)}</h3><p class='empty'>Candles not drawn: {esc(chart['missing'])}.</p>")
            continue
        per = chart["per"]
        merged = (f"each candle merges {per} × {esc(run.summary.get('timeframe'))} ({chart['rows']:,} candles in the period)"
                  if per > 1 else f"{chart['rows']:,} candles")
        parts.append(f"<h3>{esc(pair)} <span class='sub'>· {count} trades · {merged}</span></h3>"
                     + candle_chart(chart["candles"], chart["markers"], "candles", f"{pair} candles with entries and exits"))
        if "detail" in chart:
            parts.append(f"<p class='sub'>{esc(pair)}, the last {len(chart['detail']['ts'])} candles as they are:</p>"
                         + candle_chart(chart["detail"], chart["detail_markers"], "candles-detail",
                                        f"{pair}: the last candles with entries and exits"))
    shown = min(traded, candle_data.MAX_PAIRS)
    sub = (f'<p class="sub">The {shown} most traded of {traded} pairs.</p>' if traded > shown else "")
    return section("candles", "Price, entries and exits", marker_defs() + "".join(parts), sub)


#: Columns of the trade list's JSON rows (the script in page.py reads them by position).
TRADE_COLUMNS = ("pair", "is_short", "open_min", "close_min", "open_rate", "close_rate", "profit_pct", "profit_abs",
                 "exit_reason", "enter_tag", "leverage", "funding_fees", "number")


def trade_list(run: RunData) -> str:
    if not run.trades:
        return ""
    t0 = int(min(t["open_ts"] for t in run.trades))
    index: dict[str, dict[str, int]] = {"pairs": {}, "reasons": {}, "tags": {}}

    def code(kind: str, value: str) -> int:
        return index[kind].setdefault(value, len(index[kind]))

    # Compact rows (minutes from t0, indexed strings, rounded numbers) keep a long list small.
    rows = [[code("pairs", t["pair"]), int(t["is_short"]), round((t["open_ts"] - t0) / 60), round((t["close_ts"] - t0) / 60),
             float(f"{t['open_rate']:.6g}"), float(f"{t['close_rate']:.6g}"), round(t["profit_ratio"] * 100, 3),
             round(t["profit_abs"], 4), code("reasons", t["exit_reason"]), code("tags", t["enter_tag"] or "(none)"),
             t["leverage"], round(t["funding_fees"], 5), n + 1]
            for n, t in enumerate(sorted(run.trades, key=lambda t: t["open_ts"]))]
    payload = {"columns": TRADE_COLUMNS, "t0": t0, "rows": rows, "pairs": list(index["pairs"]),
               "reasons": list(index["reasons"]), "tags": list(index["tags"]),
               "futures": run.summary.get("trading_mode") == "futures"}
    csv_name = (run.summary.get("files") or {}).get("trades") or "trades.csv"
    body = (json_script("trade-data", payload)
            + '<div class="filters">pair <select id="f-pair"><option value="">all</option></select> side '
              '<select id="f-side"><option value="">all</option><option>long</option><option>short</option></select> '
              '<span id="f-count" class="sub"></span> <button id="f-more" type="button">show more</button></div>'
            + '<div class="scroll"><table id="trade-table" class="trades"></table></div>'
            + f'<noscript><p class="empty">The trade list needs scripts; every trade is in {esc(csv_name)}.</p></noscript>')
    return section("trades", f"Trades ({len(rows)}; click a column to sort)", body)


def data_read(run: RunData) -> str:
    s = run.summary
    quality = s.get("data_quality") or {}
    per_file = quality.get("per_file") or {}

    def cell(f: dict[str, Any], key: str, default: Any) -> str:
        return esc((per_file.get(f.get("file")) or {}).get(key, default))

    rows = [f"<tr><td>{esc(f.get('file'))}</td><td>{esc(f.get('role'))}</td><td>{esc(f.get('pair'))}</td>"
            f"<td>{esc(f.get('timeframe'))}</td><td>{esc(f.get('candle_type'))}</td><td>{cell(f, 'rows', 'missing')}</td>"
            f"<td>{cell(f, 'gaps', '-')}</td><td>{cell(f, 'duplicates', '-')}</td></tr>"
            for f in quality.get("files") or []]
    protections = s.get("protections") or {}
    ran = ("ran: " + ", ".join(protections.get("defined") or []) if protections.get("ran") else
           "not run" + (" (the strategy defines " + ", ".join(protections["defined"]) + "; ENABLE_PROTECTIONS "
                        "or the config's enable_protections turns them on)" if protections.get("defined") else ""))
    kind = (s.get("data_provenance") or {}).get("kind")
    origin = {"synthetic": "synthetic sample data (strategy-runner generate-data), not a market's history",
              "mixed": "partly synthetic sample data (strategy-runner generate-data)",
              "user": "your data"}.get(kind, "unknown")
    markets = s.get("markets") or {}
    inferred = markets.get("inferred_pairs") or []
    sub = (f'<p class="sub">candles: <b>{esc(origin)}</b> · markets: {esc(markets.get("source", "unknown"))}'
           f'{esc(f" (+{len(inferred)} inferred)" if inferred else "")}</p>'
           f'<p class="sub">{esc(quality.get("gaps", 0))} missing candle(s) filled by Freqtrade, '
           f'{esc(quality.get("duplicates", 0))} duplicate(s) dropped · protections {esc(ran)}</p>')
    body = table(["File", "Role", "Pair", "Timeframe", "Candles", "Rows in range", "Gaps", "Duplicates"], rows)
    return section("data", "Data read (checked before the backtest)", body, sub)


def identity(run: RunData) -> str:
    ident = run.summary.get("identity") or {}
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(ident.get(k))}</td></tr>"
                   for k in ("data_fingerprint", "strategy_hash", "config_hash", "freqtrade_version", "runner_version", "image"))
    return section("identity", "Identity (what determines this result)", f'<table class="ident">{rows}</table>')
