"""`strategy-runner sweep SPEC` on this machine: the issue's 12-item grid as real backtests,
parameters applied, resumable, gathered into sweep-result.json; a bad parameter named."""

from __future__ import annotations

import json
import time
from pathlib import Path

from .conftest import ROOT, runner

EXAMPLE = ROOT / "regression" / "sweep-example.toml"


def test_the_example_sweep_runs_twelve_backtests_and_resumes(tmp_path: Path, run_env: dict) -> None:
    env = {**run_env, "TRACKING": "false"}
    started = time.monotonic()
    done = runner(env, "sweep", str(EXAMPLE), "--jobs", "2", timeout=900)
    first_s = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sweep ema-grid: 12/12 completed" in done.stdout
    result = json.loads((Path(env["RUNS_DIR"]) / "ema-grid" / "sweep-result.json").read_text())
    assert result["counts"] == {"COMPLETED": 12} and len(result["rows"]) == 12
    for row in result["rows"]:
        ran = json.loads((Path(env["RUNS_DIR"]) / row["run_id"] / "backtest-result.json").read_text())
        assert ran["strategy_params"]["fast"] == row["parameters"]["fast"]  # the value reached the strategy
        assert ran["sweep"] == {"sweep_id": "ema-grid", "parameters": row["parameters"]}
        assert ran["pairs"] == row["pairs"] and ran["timerange"] == row["timerange"]
        assert isinstance(row["metrics"]["total_trades"], (int, float))
    # The two values of `fast` give different results on the same pair and range.
    by_key = {(r["timerange"], tuple(r["pairs"]), r["parameters"]["fast"]): r["metrics"] for r in result["rows"]}
    assert by_key[("20240901-20240915", ("BTC/USDT",), 8)] != by_key[("20240901-20240915", ("BTC/USDT",), 12)]
    assert result["best"][0] == max(result["rows"], key=lambda r: r["metrics"]["profit_total"])["run_id"]
    # A rerun keeps every COMPLETED item.
    started = time.monotonic()
    again = runner(env, "sweep", str(EXAMPLE), "--jobs", "2", timeout=300)
    assert again.returncode == 0 and again.stderr.count("kept from an earlier run") == 12, again.stderr[-2000:]
    assert time.monotonic() - started < first_s
    shown = runner(env, "sweep", "status", "ema-grid")
    assert "sweep ema-grid: 12 items: COMPLETED 12" in shown.stdout and "  1. ema-grid-" in shown.stdout


def test_a_misspelt_parameter_fails_the_item_naming_it(tmp_path: Path, run_env: dict) -> None:
    spec = tmp_path / "typo.toml"
    spec.write_text(EXAMPLE.read_text().replace('name = "ema-grid"', 'name = "typo"')
                    .replace('timeranges = ["20240901-20240915", "20240915-20241001"]', 'timeranges = ["20240901-20240915"]')
                    .replace('pairs = [["BTC/USDT"], ["ETH/USDT"], ["SOL/USDT"]]', 'pairs = [["BTC/USDT"]]')
                    .replace("fast = [8, 12]", "fsat = [8]"))
    done = runner({**run_env, "TRACKING": "false"}, "sweep", str(spec), "--jobs", "1", timeout=300)
    assert done.returncode == 1
    assert "failed: typo-1 ConfigurationError: STRATEGY_PARAMETERS: fsat is not a parameter of EmaCrossSpot" in done.stdout
