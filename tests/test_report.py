"""report.html: written by every run, self-contained, and rendered by a real browser
(Debian's headless Chromium) with all charts drawn and no console errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from strategy_runner.report.html import histogram, monthly_returns, read_trades, render

from .conftest import runner

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Flags known to work as root with no network here (see the machine notes): no sandbox,
# no GPU, and nothing that phones home.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """One real run (a week of BTC/USDT) whose results the tests read."""
    tmp = tmp_path_factory.mktemp("report")
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    from .conftest import ROOT

    env.update(RUNS_DIR=str(tmp / "runs"), DATA_DIR=str(ROOT / "data"), STRATEGIES_DIR=str(ROOT / "strategies"),
               CONFIGS_DIR=str(ROOT / "configs"), LOG_FORMAT="json", RUN_ID="report-run", PAIRS="BTC/USDT",
               TIMERANGE="20241001-20241008", RESULT_CACHE="false", MLFLOW_TRACKING_URI=f"sqlite:///{tmp}/mlflow.db")
    proc = runner(env, cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp / "runs" / "report-run"


def test_every_run_writes_a_self_contained_report(run_dir):
    page = (run_dir / "report.html").read_text()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert "report.html" in manifest["files"]  # so it is published with the results (S3, MLflow)
    for kind in ("equity", "drawdown", "monthly", "duration", "profit"):
        assert f'data-chart="{kind}"' in page
    # Nothing to fetch: no external scripts, styles, images or fonts (the CSP forbids them too).
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', page)
    assert "default-src 'none'" in page
    summary = json.loads((run_dir / "backtest-result.json").read_text())
    for row in summary["per_pair"]:
        assert f"<td>{row['pair']}</td><td>{row['trades']:.0f}</td>" in page


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                    reason="Debian's chromium is not installed (.ci/run installs it: apt-get install -y chromium)")
def test_chromium_renders_the_charts_without_errors(run_dir, tmp_path):
    assert CHROMIUM, "chromium missing in CI: .ci/run should have installed it"
    url = (run_dir / "report.html").resolve().as_uri()
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body, dom.stdout[:500]
    # The page's own script counts the charts that have drawn geometry and records errors.
    assert 'data-charts="5"' in body.group(0) and 'data-drawn="5"' in body.group(0), body.group(0)
    assert "data-errors" not in body.group(0)
    assert "5 of 5 charts drawn" in dom.stdout
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == [], console
    assert "Refused to" not in dom.stderr  # no blocked fetches: the page asks for nothing

    shot = tmp_path / "report.png"
    snap = subprocess.run([CHROMIUM, *flags, "--window-size=840,2400", f"--screenshot={shot}", url],
                          capture_output=True, text=True, timeout=120)
    assert snap.returncode == 0 and shot.is_file(), snap.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    # Kept for a person to look at (CI keeps test-artifacts/ when it uploads them).
    keep = Path(__file__).resolve().parent.parent / "test-artifacts"
    keep.mkdir(exist_ok=True)
    shutil.copy2(shot, keep / "report.png")


def test_report_numbers_follow_the_trades(run_dir):
    trades = read_trades(run_dir / "trades.csv")
    summary = json.loads((run_dir / "backtest-result.json").read_text())
    assert len(trades) == int(summary["metrics"]["total_trades"])
    months = monthly_returns(trades, 1000.0)
    assert abs(sum(p for p, _ in months.values()) - summary["metrics"]["profit_total_abs"]) < 1e-6
    assert sum(c for _, _, c in histogram([t["duration_min"] for t in trades])) == len(trades)
    empty = render({**summary, "per_pair": []}, [])
    assert "No trades" in empty and 'data-chart="equity"' not in empty


def test_the_report_says_what_the_result_was_computed_from(run_dir):
    summary = json.loads((run_dir / "backtest-result.json").read_text())
    page = render(summary, read_trades(run_dir / "trades.csv"))
    assert "timeframe from strategy" in page and "BTC_USDT-5m.feather" in page and "Warnings that may" not in page
    summary["warnings"] = {"stake_below_minimum": {"count": 40, "first": "BTC/USDT: stake 0.05 is below the minimum"}}
    summary["data_quality"]["missing_informative"] = ["informative BTC/USDT 15m spot: no data"]
    summary["protections"] = {"enabled": False, "defined": ["CooldownPeriod"], "ran": False}
    page = render(summary, read_trades(run_dir / "trades.csv"))
    assert "Warnings that may change this result" in page and "stake_below_minimum</b> × 40" in page
    assert "allowed by ALLOW_MISSING_INFORMATIVE" in page and "the strategy defines CooldownPeriod" in page
