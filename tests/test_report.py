"""report.html and comparison.html: written by real runs (a year of spot on three pairs, a month
of futures with shorts, a run with no trades, a two-item sweep), holding Freqtrade's numbers,
within their size budget, and rendered by a real browser (Debian's headless Chromium) with
every section shown and no console errors. Screenshots go to test-artifacts/."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from strategy_runner.report.candles import MAX_CANDLES, MAX_PAIRS
from strategy_runner.report.data import equity_curve, load_run, read_freqtrade_zip
from strategy_runner.report.html import render, size_budget, write_report

from .conftest import ROOT, runner

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Flags known to work as root with no network here (see the machine notes): no sandbox,
# no GPU, and nothing that phones home.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]
needs_chromium = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                    reason="Debian's chromium is not installed (.ci/run installs it: apt-get install -y chromium)")
ARTIFACTS = ROOT / "test-artifacts"
RUN_SECTIONS = {"run", "warnings", "metrics", "equity", "breakdown", "periods", "candles", "trades", "distributions",
                "data", "identity"}


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update(RUNS_DIR=str(tmp / "runs"), DATA_DIR=str(ROOT / "data"), STRATEGIES_DIR=str(ROOT / "strategies"),
               CONFIGS_DIR=str(ROOT / "configs"), LOG_FORMAT="json", RESULT_CACHE="false", TRACKING="false")
    env.update(extra)
    return env


def _backtest(tmp: Path, run_id: str, **extra: str) -> Path:
    proc = runner(_env(tmp, RUN_ID=run_id, **extra), cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp / "runs" / run_id


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("report")


@pytest.fixture(scope="module")
def spot_dir(runs) -> Path:
    """A year of 5m candles on three pairs: the long range the candles are merged for."""
    return _backtest(runs, "report-spot", PAIRS="BTC/USDT,ETH/USDT,SOL/USDT", TIMERANGE="20240101-20250101")


@pytest.fixture(scope="module")
def futures_dir(runs) -> Path:
    """A month of futures, long and short at 2x, with funding fees."""
    return _backtest(runs, "report-futures", STRATEGY="EmaCrossFutures", PAIRS="BTC/USDT:USDT,ETH/USDT:USDT",
                     TIMERANGE="20241001-20241101")


@pytest.fixture(scope="module")
def no_trades_dir(runs) -> Path:
    configs = runs / "configs"
    shutil.copytree(ROOT / "configs", configs)
    base = json.loads((configs / "base.json").read_text())
    (configs / "tiny-stake.json").write_text(json.dumps({**base, "stake_amount": 0.05}))
    return _backtest(runs, "report-no-trades", CONFIGS_DIR=str(configs), CONFIG="tiny-stake.json", PAIRS="BTC/USDT",
                     TIMERANGE="20241001-20241008")


def _stats(run_dir: Path) -> dict:
    summary = json.loads((run_dir / "backtest-result.json").read_text())
    return read_freqtrade_zip(run_dir / summary["files"]["freqtrade_zip"], summary["strategy"])[0]


def _chromium(url: str, profile: Path, shot: Path, height: int) -> tuple[str, str]:
    """(the DOM after the page's script ran, browser log); and a full-width screenshot."""
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=5000"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    snap = subprocess.run([CHROMIUM, *flags, f"--window-size=1100,{height}", f"--screenshot={shot}", url],
                          capture_output=True, text=True, timeout=180)
    assert snap.returncode == 0 and shot.is_file(), snap.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    ARTIFACTS.mkdir(exist_ok=True)  # kept for a person to look at (CI uploads test-artifacts/)
    shutil.copy2(shot, ARTIFACTS / shot.name)
    return dom.stdout, dom.stderr + snap.stderr


def _body(dom: str) -> dict[str, str]:
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:500]
    return dict(re.findall(r'data-([\w-]+)="([^"]*)"', body.group(1)))


def _no_console_errors(log: str) -> None:
    console = [line for line in log.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == [], console
    assert "Refused to" not in log  # no blocked fetches: the page asks for nothing


# --- the file -----------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["spot", "futures"])
def test_every_run_writes_a_self_contained_report_within_its_budget(which, request):
    run_dir = request.getfixturevalue(f"{which}_dir")
    page = (run_dir / "report.html").read_text()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert "report.html" in manifest["files"]  # so it is published with the results (S3, MLflow)
    # Nothing to fetch: no external scripts, styles, images or fonts (the CSP forbids them too).
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', page)
    assert "default-src 'none'" in page
    trades = int(json.loads((run_dir / "backtest-result.json").read_text())["metrics"]["total_trades"])
    size = (run_dir / "report.html").stat().st_size
    assert trades > 400 and size <= size_budget(trades), (size, size_budget(trades))
    print(f"{which}: {size} bytes for {trades} trades (budget {size_budget(trades)})")


def test_a_year_of_candles_is_merged_to_the_chart_limit(spot_dir):
    page = (spot_dir / "report.html").read_text()
    charts = re.findall(r'data-chart="candles".*?</svg>', page, flags=re.S)
    assert len(charts) == min(3, MAX_PAIRS)
    for chart in charts:
        bodies = sum(d.count("z") for d in re.findall(r'class="c-(?:up|down)" d="([^"]*)"', chart))
        assert MAX_CANDLES / 2 < bodies <= MAX_CANDLES  # a year of 5m candles, about 105,000, drawn as at most 400
    assert "each candle merges 264 × 5m (105,408 candles in the period)" in page
    # Every trade is in the list, even though the charts are merged.
    data = json.loads(re.search(r'<script type="application/json" id="trade-data">(.*?)</script>', page).group(1))
    assert len(data["rows"]) == int(json.loads((spot_dir / "backtest-result.json").read_text())["metrics"]["total_trades"])


def test_many_pairs_and_days_are_cut_to_a_bound_and_missing_candles_are_named(spot_dir, monkeypatch, tmp_path):
    from strategy_runner.report import candles, sections

    run = load_run(spot_dir)
    by_trades = sorted(run.summary["per_pair"], key=lambda r: -r["trades"])
    monkeypatch.setattr(candles, "MAX_PAIRS", 2)
    monkeypatch.setattr(sections, "MAX_DAY_ROWS", 30)
    page = render(run)
    assert "The 2 most traded of 3 pairs." in page
    assert "The last 30 of 366 days; weeks and months cover the whole period." in page
    drawn = re.findall(r"<h3>([A-Z]+/USDT) <span class='sub'>· (\d+) trades", page)
    assert drawn == [(r["pair"], str(int(r["trades"]))) for r in by_trades[:2]]
    monkeypatch.setenv("DATA_DIR", str(tmp_path))  # the report written where the candles are not
    page = render(run)
    assert f"Candles not drawn: {by_trades[0]['pair'].replace('/', '_')}-5m.feather is not in DATA_DIR ({tmp_path})" in page
    assert 'data-section="trades"' in page  # the rest of the report stands


def test_building_the_report_is_fast(spot_dir, tmp_path):
    import pandas  # noqa: F401 - loaded already in the worker that writes the report

    copy = tmp_path / "run"
    shutil.copytree(spot_dir, copy)
    started = time.perf_counter()
    write_report(copy)
    seconds = time.perf_counter() - started
    assert seconds < 3.0, seconds  # about 0.3 s here for a year of three pairs; it runs after every backtest


# --- what it says -------------------------------------------------------------------------

def test_the_headline_metrics_and_tables_are_freqtrades(spot_dir):
    stats = _stats(spot_dir)
    page = (spot_dir / "report.html").read_text()

    def card(key: str) -> str:
        return re.search(rf'data-metric="{key}"><span>[^<]*</span><b[^>]*>([^<]*)</b>', page).group(1)

    assert card("profit_total") == f"{stats['profit_total'] * 100:.2f}%"
    assert card("cagr") == f"{stats['cagr'] * 100:.2f}%"
    for key in ("sharpe", "sortino", "calmar", "sqn", "profit_factor"):
        assert card(key) == f"{stats[key]:.2f}", key
    assert card("max_drawdown_account") == f"{stats['max_drawdown_account'] * 100:.2f}%"
    assert card("winrate") == f"{stats['winrate'] * 100:.2f}%"
    assert card("duration_avg") == stats["holding_avg"]
    assert card("market_change") == f"{stats['market_change'] * 100:.2f}%"
    best = max(stats["trades"], key=lambda t: t["profit_ratio"])
    assert card("best_trade") == f"{best['profit_ratio'] * 100:.2f}%"
    for key in ("expectancy", "worst_trade", "exposure", "total_trades", "profit_total_abs"):
        assert card(key)
    for row in stats["results_per_pair"] + stats["exit_reason_summary"]:
        assert f"<td>{row['key']}</td><td>{row['trades']}</td>" in page, row["key"]
    months = re.search(r'id="period-month".*?</table>', page, flags=re.S).group(0)
    assert months.count("<tr>") == len(stats["periodic_breakdown"]["month"]) + 1  # + the header
    assert f"the market moved {stats['market_change'] * 100:.2f}%" in page
    assert 'class="bench"' in page  # the benchmark line drawn with the equity
    assert "futures" not in re.findall(r'data-section="([^"]+)"', page)


def test_a_futures_report_shows_shorts_leverage_and_funding(futures_dir):
    stats = _stats(futures_dir)
    page = (futures_dir / "report.html").read_text()
    assert stats["trade_count_short"] > 0
    assert f"<td>short</td><td>{stats['trade_count_short']}</td>" in page
    assert f"<td>long</td><td>{stats['trade_count_long']}</td>" in page
    assert f"<td>2×</td><td>{stats['total_trades']}</td>" in page  # by leverage
    funding = sum(t["funding_fees"] for t in stats["trades"])
    assert f"funding fees {funding:,.4f} USDT in all" in page and "0 liquidation(s)" in page
    assert "futures (isolated margin)" in page


def test_a_report_without_trades_says_why(no_trades_dir):
    page = (no_trades_dir / "report.html").read_text()
    assert "No trades: why" in page
    assert "entries were refused: the stake is below the pair&#x27;s minimum" in page
    assert 'data-section="trades"' not in page and 'data-section="candles"' not in page


def test_the_run_facts_and_warnings(futures_dir):
    run = load_run(futures_dir)
    summary = run.summary
    page = render(run)
    for fact in ("EmaCrossFutures", "5m (from strategy)", "BTC/USDT:USDT, ETH/USDT:USDT", "2024-10-01 00:00 to 2024-11-01 00:00",
                 "100 USDT", "1,000.00 USDT", f"{run.stats['final_balance']:,.2f} USDT", "synthetic sample data", "snapshot"):
        assert f"<b>{fact}</b>" in page, fact
    assert "Max open trades</span><b>2</b>" in page
    summary["warnings"] = {"stake_below_minimum": {"count": 40, "first": "BTC/USDT: stake 0.05 is below the minimum"}}
    summary["data_quality"].update(missing_informative=["informative BTC/USDT 15m spot: no data"], gaps=3, duplicates=1)
    summary["markets"]["inferred_pairs"] = ["EUR/USD"]
    page = render(run)
    assert "stake_below_minimum</b> × 40" in page and "allowed by ALLOW_MISSING_INFORMATIVE" in page
    assert "3 missing candle(s) filled flat by Freqtrade, 1 duplicate(s) dropped" in page
    assert "snapshot + 1 inferred" in page and "EUR/USD: markets built by MARKETS=infer" in page


def test_an_unreadable_freqtrade_archive_still_gives_a_report(futures_dir, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(futures_dir, copy)
    summary = json.loads((copy / "backtest-result.json").read_text())
    (copy / summary["files"]["freqtrade_zip"]).write_bytes(b"not a zip")
    page = write_report(copy).read_text()
    assert "could not be read" in page and "the trades come from trades.csv" in page
    assert f"Trades ({int(summary['metrics']['total_trades'])};" in page


def test_the_equity_curve_for_tracking(spot_dir):
    curve = equity_curve(spot_dir)
    stats = _stats(spot_dir)
    assert curve[0] == (datetime(2024, 1, 1, tzinfo=UTC), 1000.0)
    assert len(curve) == stats["total_trades"] + 1
    assert all(a[0] <= b[0] for a, b in zip(curve, curve[1:]))
    assert curve[-1][1] == pytest.approx(stats["final_balance"], abs=1e-6)
    assert min(b for _t, b in curve) == pytest.approx(stats["csum_min"], abs=1e-6)


# --- in a browser -------------------------------------------------------------------------

@needs_chromium
@pytest.mark.parametrize("which", ["spot", "futures", "no_trades"])
def test_chromium_renders_every_section_without_errors(which, request, tmp_path):
    assert CHROMIUM, "chromium missing in CI: .ci/run should have installed it"
    run_dir = request.getfixturevalue(f"{which}_dir")
    dom, log = _chromium((run_dir / "report.html").resolve().as_uri(), tmp_path / "profile",
                         tmp_path / f"report-{which.replace('_', '-')}.png", 9000 if which != "no_trades" else 2600)
    body = _body(dom)
    assert "errors" not in body, body["errors"]
    _no_console_errors(log)
    expected = {"spot": RUN_SECTIONS, "futures": RUN_SECTIONS | {"futures"},
                "no_trades": {"run", "warnings", "no-trades", "metrics", "equity", "breakdown", "periods",
                              "distributions", "data", "identity"}}[which]
    assert set(body["sections"].split(",")) == expected and body["empty-sections"] == ""
    # equity, drawdown, monthly, per pair candles (merged, and the last candles as they are),
    # durations, profits; without trades only the flat balance against the benchmark
    charts = {"spot": 5 + 3 * 2, "futures": 5 + 2 * 2, "no_trades": 1}[which]
    assert body["charts"] == body["drawn"] == str(charts), body
    if which != "no_trades":
        assert body["trade-rows"] == "250"  # the script drew the first page of the trade list
        assert f"{body['drawn']} of {body['charts']} charts drawn" in dom


@pytest.fixture
def browser(tmp_path):
    from .browser import Browser

    assert CHROMIUM, "chromium missing in CI: .ci/run should have installed it"
    driven = Browser(CHROMIUM, CHROMIUM_FLAGS, tmp_path / "profile")
    yield driven
    driven.close()


@needs_chromium
@pytest.mark.parametrize("frame_shown", ["at once", "after 0.5 s"])
def test_the_report_renders_in_mlflows_artifact_view(frame_shown, futures_dir, tmp_path, browser):
    """MLflow's artifact view (3.x, ShowArtifactHtmlView) puts the fetched file in an iframe from
    a blob URL with sandbox="allow-scripts": an opaque origin, no storage. This page does the
    same, and the report's script posts what it drew to its parent. Such a frame can run its
    script before its parent has given it a size (seen in CI: 0 of 9 charts, 0 sections); a frame
    hidden for its first half second makes that moment certain."""
    show = ("document.body.appendChild(f);" if frame_shown == "at once" else
            "f.style.display='none';document.body.appendChild(f);setTimeout(function(){f.style.display='';},500);")
    artifact = json.dumps((futures_dir / "report.html").read_text()).replace("</", "<\\/")
    view = tmp_path / "mlflow-artifact-view.html"
    view.write_text(
        '<!DOCTYPE html><html><body><script type="application/json" id="artifact">' + artifact + "</script><script>"
        "addEventListener('message',function(e){document.body.dataset.child=JSON.stringify(e.data);});"
        "var html=JSON.parse(document.getElementById('artifact').textContent),f=document.createElement('iframe');"
        "f.setAttribute('sandbox','allow-scripts');f.width=1000;f.height=800;"
        "f.src=URL.createObjectURL(new Blob([html],{type:'text/html'}));" + show +
        "</script></body></html>")
    tab = browser.open(view.as_uri())
    child = json.loads(browser.wait_for(tab, "document.body && document.body.dataset.child"))
    assert child["errors"] == 0 and child["report"] == "9 of 9 charts drawn; 12 sections shown", child
    assert set(child["sections"].split(",")) == RUN_SECTIONS | {"futures"}
    assert browser.problems() == []


@needs_chromium
def test_the_trade_list_sorts_and_filters(futures_dir, browser):
    tab = browser.open((futures_dir / "report.html").resolve().as_uri())
    browser.wait_for(tab, "document.body && document.body.dataset.sections")
    stats = _stats(futures_dir)

    def rows() -> list[list[str]]:
        return browser.evaluate(tab, "[].map.call(document.querySelectorAll('#trade-table tbody tr'),"
                                     "function(r){return [].map.call(r.cells,function(c){return c.textContent;});})")

    def choose(select: str, label: str) -> None:
        browser.evaluate(tab, f"(function(s){{s.value=[].filter.call(s.options,function(o){{return o.textContent==={label!r};}})[0].value;"
                              f"s.dispatchEvent(new Event('change'));}})(document.getElementById({select!r}))")

    assert len(rows()) == 250 and [r[0] for r in rows()[:3]] == ["1", "2", "3"]  # by entry, first page
    choose("f-pair", "ETH/USDT:USDT")
    choose("f-side", "short")
    shown = rows()
    expected = [t for t in stats["trades"] if t["pair"] == "ETH/USDT:USDT" and t["is_short"]]
    assert len(shown) == len(expected) > 0 and {(r[1], r[2]) for r in shown} == {("ETH/USDT:USDT", "short")}
    count = browser.evaluate(tab, "document.getElementById('f-count').textContent")
    assert count == f"{len(expected)} of {len(expected)} trades shown ({stats['total_trades']} in all)"
    browser.evaluate(tab, "[].filter.call(document.querySelectorAll('#trade-table th'),function(h){return h.textContent==='Profit %';})[0].click()")
    profits = [float(r[8].rstrip("%")) for r in rows()]
    assert profits == sorted(profits, reverse=True)
    assert profits[0] == pytest.approx(max(t["profit_ratio"] for t in expected) * 100, abs=0.011)
    assert browser.problems() == []


# --- comparison -----------------------------------------------------------------------------

SWEEP = """
[sweep]
name = "report-grid"
strategy = "EmaCrossSpot"
config = "base.json"
timeframe = "5m"
timeranges = ["20241001-20241015"]
pairs = [["BTC/USDT"], ["ETH/USDT"]]

[parameters]
fast = [8, 12]
"""


@pytest.fixture(scope="module")
def sweep_dir(runs) -> Path:
    spec = runs / "report-grid.toml"
    spec.write_text(SWEEP)
    done = runner(_env(runs), "sweep", str(spec), "--jobs", "2", cwd=runs, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"comparison: {runs / 'runs' / 'report-grid' / 'comparison.html'}" in done.stdout
    return runs / "runs" / "report-grid"


def test_a_sweep_writes_a_comparison_of_its_items(sweep_dir):
    result = json.loads((sweep_dir / "sweep-result.json").read_text())
    page = (sweep_dir / "comparison.html").read_text()
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', page) and "default-src 'none'" in page
    ranked = re.findall(r'<a href="\.\./([\w-]+)/report\.html">', page)
    assert ranked == sorted((r["run_id"] for r in result["rows"]), key=lambda i: -next(
        r["metrics"]["profit_total"] for r in result["rows"] if r["run_id"] == i))  # best first, as sweep-result.json
    for row in result["rows"]:
        assert (sweep_dir.parent / row["run_id"] / "report.html").is_file()
        assert f'data-v="{row["metrics"]["sharpe"]:.10g}"' in page  # its metrics, side by side
    curves = re.search(r'data-chart="compare-equity".*?</svg>', page, flags=re.S).group(0)
    assert curves.count('class="line"') == len(result["rows"])  # every item's equity on the one chart


@needs_chromium
def test_chromium_renders_the_comparison(sweep_dir, tmp_path):
    dom, log = _chromium((sweep_dir / "comparison.html").resolve().as_uri(), tmp_path / "profile",
                         tmp_path / "comparison.png", 1000)
    body = _body(dom)
    assert "errors" not in body
    _no_console_errors(log)
    assert body["sections"] == "compare-metrics,compare-equity" and body["charts"] == body["drawn"] == "1"


def test_a_sweep_item_without_results_is_listed_not_compared(sweep_dir, tmp_path):
    from strategy_runner.sweep.result import comparison

    result = json.loads((sweep_dir / "sweep-result.json").read_text())
    runs_dir = tmp_path / "runs"
    shutil.copytree(sweep_dir.parent / result["rows"][0]["run_id"], runs_dir / result["rows"][0]["run_id"])
    rows = [result["rows"][0], {**result["rows"][1], "status": "FAILED",
                                "error": {"type": "BacktestError", "message": "boom", "retryable": False}}]
    page = comparison("partial", "profit_total", rows, runs_dir).read_text()
    assert page.count('<a href="../') == 1 and "FAILED BacktestError" in page and 'data-section="compare-missing"' in page
    assert comparison("elsewhere", "profit_total", rows, tmp_path / "empty") is None  # nothing local: no page


def test_a_regression_suite_writes_a_comparison_of_its_cases(runs):
    out = runs / "regression-runs"
    done = runner(_env(runs), "regression", "--suite", str(ROOT / "regression" / "suite.toml"), "--case", "spot-btc-eth-2w",
                  "--case", "futures-btc-2w", "--runs-dir", str(out), cwd=runs, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    path = Path(re.search(r"regression: comparison of the cases: (\S+)", done.stderr).group(1))
    assert path.parent.parent == out and path.parent.name.startswith("regression-") and path.name == "comparison.html"
    page = path.read_text()
    for case in ("spot-btc-eth-2w", "futures-btc-2w"):
        run_id = re.search(rf'<a href="\.\./(regression-[\w-]+-{case})/report\.html">', page).group(1)
        assert (out / run_id / "report.html").is_file()
    assert re.search(r'data-chart="compare-equity".*?</svg>', page, flags=re.S).group(0).count('class="line"') == 2
