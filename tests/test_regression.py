"""strategy-runner regression: the project's suite against its committed baselines, a
changed strategy parameter failing with a readable diff, and --update-baselines."""

from __future__ import annotations

import json
import math
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from strategy_runner.errors import ConfigurationError
from strategy_runner.regression.compare import explain
from strategy_runner.regression.suite import Tolerance, load_suite

from .conftest import ROOT, runner

SUITE = ROOT / "regression" / "suite.toml"


@pytest.fixture
def env(run_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**run_env, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}


def _suite(tmp_path: Path, strategies: Path, baselines: Path, case: str) -> Path:
    path = tmp_path / "suite.toml"
    path.write_text(f"""
[paths]
strategies_dir = "{strategies}"
configs_dir = "{ROOT / 'configs'}"
data_dir = "{ROOT / 'data'}"
baselines_dir = "{baselines}"
{case}
""")
    return path


def test_project_suite_passes_against_committed_baselines(env, tmp_path):
    junit, md = tmp_path / "junit.xml", tmp_path / "summary.md"
    proc = runner(env, "regression", "--suite", str(SUITE), "--runs-dir", str(tmp_path / "runs"),
                  "--junit", str(junit), "--markdown", str(md), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "0", "0")
    assert {tc.get("name") for tc in suite.iter("testcase")} == {c.name for c in load_suite(SUITE).cases}
    assert "all 3 passed" in md.read_text()
    # Every case ran for real and left a report beside its results.
    for tc in suite.iter("testcase"):
        run_id = tc.find("system-out").text.splitlines()[0].removeprefix("run_id: ")
        assert (tmp_path / "runs" / run_id / "report.html").is_file()


def test_changed_strategy_parameter_fails_with_a_readable_diff(env, tmp_path):
    strategies = tmp_path / "strategies"
    shutil.copytree(ROOT / "strategies", strategies, ignore=shutil.ignore_patterns("__pycache__"))
    source = strategies / "EmaCrossSpot.py"
    text = source.read_text()
    assert "fast = IntParameter(5, 30, default=12" in text
    source.write_text(text.replace("fast = IntParameter(5, 30, default=12", "fast = IntParameter(5, 30, default=8"))
    committed = load_suite(SUITE).cases[0]
    suite = _suite(tmp_path, strategies, ROOT / "regression" / "baselines", f"""
[[case]]
name = "{committed.name}"
strategy = "{committed.strategy}"
config = "{committed.config}"
pairs = {json.dumps(list(committed.pairs))}
timerange = "{committed.timerange}"
""")
    junit = tmp_path / "junit.xml"
    proc = runner(env, "regression", "--suite", str(suite), "--runs-dir", str(tmp_path / "runs"),
                  "--junit", str(junit), "--markdown", str(tmp_path / "s.md"), cwd=tmp_path)
    print(proc.stdout)
    assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
    out = proc.stdout
    assert f"{committed.name}" in out and "FAIL" in out
    # The diff names the moved metrics with baseline, current, delta and tolerance ...
    assert "metric" in out and "baseline" in out and "current" in out and "tolerance" in out
    assert "total_trades" in out and "exact" in out
    # ... and says why: the strategy source changed, nothing else did.
    assert "why: strategy code changed" in out
    assert "data changed" not in out and "engine changed" not in out
    failure = ET.parse(junit).getroot().find("testsuite/testcase/failure")
    assert failure is not None and "metric(s) moved" in failure.get("message")
    assert "why: strategy code changed" in failure.text
    assert "FAIL" in (tmp_path / "s.md").read_text()


def test_update_baselines_then_an_identical_rerun_passes_with_identical_metrics(env, tmp_path):
    baselines = tmp_path / "baselines"
    suite = _suite(tmp_path, ROOT / "strategies", baselines, """
[[case]]
name = "spot-btc-1w"
strategy = "EmaCrossSpot"
pairs = ["BTC/USDT"]
timerange = "20241001-20241008"
""")
    runs = tmp_path / "runs"
    first = runner(env, "regression", "--suite", str(suite), "--runs-dir", str(runs), "--update-baselines",
                   "--no-cache", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr[-3000:]
    baseline = json.loads((baselines / "spot-btc-1w.json").read_text())
    assert baseline["case"]["pairs"] == ["BTC/USDT"] and baseline["metrics"]["total_trades"] > 0
    assert set(baseline["identity"]) >= {"data_fingerprint", "strategy_hash", "config_hash",
                                         "freqtrade_version", "runner_version", "image"}
    second = runner(env, "regression", "--suite", str(suite), "--runs-dir", str(runs), "--no-cache", cwd=tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr[-3000:]
    assert "PASS" in second.stdout and "(cached)" not in second.stdout
    # Reproducibility: two real runs of the same inputs, bit-identical metrics and trades.
    a, b = sorted(p for p in runs.iterdir() if (p / "backtest-result.json").is_file())  # not the comparison page's dir
    ra, rb = (json.loads((p / "backtest-result.json").read_text()) for p in (a, b))
    assert ra["run_id"] != rb["run_id"]
    assert ra["metrics"] == rb["metrics"] and ra["per_pair"] == rb["per_pair"]
    assert ra["identity"] == rb["identity"]
    assert (a / "trades.csv").read_bytes() == (b / "trades.csv").read_bytes()


def test_tolerance_is_absolute_or_relative_and_counts_are_exact():
    assert Tolerance(abs=0.01).allows(1.0, 1.009) and not Tolerance(abs=0.01).allows(1.0, 1.02)
    assert Tolerance(rel=0.1).allows(100.0, 109.0) and not Tolerance(rel=0.1).allows(100.0, 111.0)
    assert Tolerance().allows(math.nan, math.nan) and not Tolerance().allows(1.0, math.nan)
    suite = load_suite(SUITE)
    case = suite.cases[0]
    assert suite.tolerance(case, "total_trades").describe() == "exact"
    assert suite.tolerance(case, "pair:BTC/USDT:trades").describe() == "exact"
    assert suite.tolerance(case, "profit_total") == Tolerance(1e-9, 1e-6)


def test_matrix_expands_and_bad_suites_name_the_problem(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("""
[[matrix]]
strategies = ["A", "B"]
configs = ["base.json"]
pairs = [["BTC/USDT"], ["ETH/USDT", "SOL/USDT"]]
timeranges = ["20241001-20241008", "20241101-20241108"]
""")
    names = [c.name for c in load_suite(path).cases]
    assert len(names) == 8 and len(set(names)) == 8
    assert "B-base-ETH_USDT_SOL_USDT-20241101-20241108" in names
    path.write_text('[[case]]\nname = "x"\nstrategy = "A"\npairs = ["BTC/USDT"]\ntimerange = "20241001-2024"\nfoo = 1\n')
    with pytest.raises(ConfigurationError, match=r"unknown keys \['foo'\]"):
        load_suite(path)
    path.write_text('[[case]]\nname = "x"\nstrategy = "A"\npairs = ["BTC/USDT"]\ntimerange = "20241008-20241001"\n')
    with pytest.raises(ConfigurationError, match="starts on or after its end"):
        load_suite(path)


def test_explain_tells_data_from_code_from_engine():
    base = {"data_fingerprint": "d1", "data_files": {"BTC_USDT-5m.feather": "x", "ETH_USDT-5m.feather": "y"},
            "strategy_hash": "s1", "config_hash": "c1", "freqtrade_version": "2026.9", "runner_version": "0.1.0",
            "image": "local"}
    assert explain(base, dict(base)) == []
    moved = explain(base, {**base, "data_fingerprint": "d2", "data_files": {**base["data_files"], "ETH_USDT-5m.feather": "z"}})
    assert moved == ["data changed: ETH_USDT-5m.feather"]
    assert explain(base, {**base, "freqtrade_version": "2026.10"}) == ["engine changed: freqtrade 2026.9 → 2026.10"]
    assert explain(base, {**base, "strategy_hash": "s2"})[0].startswith("strategy code changed")


def test_junit_and_markdown_name_failures_missing_baselines_and_errors(tmp_path):
    from strategy_runner.regression.compare import ERROR, FAIL, MISSING, PASS, CaseResult, MetricDiff
    from strategy_runner.regression.output import junit_xml, markdown

    cases = load_suite(SUITE).cases
    moved = MetricDiff("total_trades", 76.0, 98.0, "exact", False)
    results = [
        CaseResult(cases[0], FAIL, run_id="r1", metrics={"total_trades": 98.0}, diffs=[moved],
                   why=["strategy code changed (source a → b)"]),
        CaseResult(cases[1], MISSING, run_id="r2", error="no baseline regression/baselines/x.json"),
        CaseResult(cases[2], ERROR, run_id="r3", error="the run exited with code 3: DataError: no data"),
    ]
    junit_xml(results, SUITE, tmp_path / "j.xml")
    suite = ET.parse(tmp_path / "j.xml").getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "2", "1")
    first, second, third = suite.iter("testcase")
    assert "total_trades" in first.find("failure").get("message")
    assert "76" in first.find("failure").text and "98" in first.find("failure").text
    assert "--update-baselines" in second.find("failure").get("message")
    assert "DataError" in third.find("error").get("message")
    md = markdown(results, SUITE)
    assert "3 of 3 failed" in md and "**76 → 98**" in md and "strategy code changed" in md
    assert markdown([CaseResult(cases[0], PASS)], SUITE).startswith("## Regression backtests: all 1 passed")
