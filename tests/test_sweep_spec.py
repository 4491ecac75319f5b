"""The sweep spec, its expansion into runs, and parameters applied the way Freqtrade applies them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from strategy_runner.errors import ConfigurationError, ValidationError
from strategy_runner.engine.parameters import check_applied, check_declared, stage
from strategy_runner.sweep import load_spec
from strategy_runner.sweep.result import best

ROOT = Path(__file__).resolve().parent.parent
ISSUE_EXAMPLE = """
[sweep]
name = "ema-grid"
strategy = "EmaCrossSpot"
config = "base.json"
timeframe = "5m"
timeranges = ["20240901-20240915", "20240915-20241001"]
pairs = [["BTC/USDT"], ["ETH/USDT"], ["SOL/USDT"]]

[parameters]
fast = [8, 12]
"""


def spec_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    return path


def test_the_example_expands_to_twelve_runs_with_stable_ids(tmp_path: Path) -> None:
    spec = load_spec(spec_file(tmp_path, ISSUE_EXAMPLE))
    assert spec.sweep_id == "ema-grid" and len(spec.items) == 12
    assert [i.run_id for i in spec.items] == [f"ema-grid-{n}" for n in range(1, 13)]
    first, last = spec.items[0], spec.items[-1]
    assert (first.timerange, first.pairs, first.parameters) == ("20240901-20240915", ("BTC/USDT",), {"fast": 8})
    assert (last.timerange, last.pairs, last.parameters) == ("20240915-20241001", ("SOL/USDT",), {"fast": 12})
    assert len({(i.timerange, i.pairs, json.dumps(i.parameters)) for i in spec.items}) == 12
    assert load_spec(spec_file(tmp_path, ISSUE_EXAMPLE)).items == spec.items  # what makes a rerun resume
    env = first.environment()
    assert (env["RUN_ID"], env["PAIRS"], env["STRATEGY_PARAMETERS"], env["SWEEP_ID"], env["TIMEFRAME"]) == (
        "ema-grid-1", "BTC/USDT", '{"fast": 8}', "ema-grid", "5m")


def test_strategies_and_a_grid_of_two_parameters_multiply(tmp_path: Path) -> None:
    text = ISSUE_EXAMPLE.replace('strategy = "EmaCrossSpot"', 'strategies = ["EmaCrossSpot", "Other"]') + "slow = [40, 50, 60]\n"
    spec = load_spec(spec_file(tmp_path, text), sweep_id="custom")
    assert len(spec.items) == 2 * 2 * 3 * 2 * 3 and spec.items[0].run_id == "custom-1"


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda t: t.replace('name = "ema-grid"', 'name = "ema grid"'), "sweep.name = 'ema grid'"),
    (lambda t: t.replace('timeframe = "5m"', 'timeframe = "7m"'), "sweep.timeframe = '7m'"),
    (lambda t: t.replace('"20240915-20241001"', '"2024-09-15"'), "sweep.timeranges = '2024-09-15'"),
    (lambda t: t.replace('["SOL/USDT"]', '["sol-usdt"]'), "sweep.pairs = ['sol-usdt']"),
    (lambda t: t.replace("fast = [8, 12]", "fast = []"), "parameters.fast = []"),
    (lambda t: t.replace('config = "base.json"', 'config = "base.json"\nworkers = 3'), "unknown key workers"),
    (lambda t: t.replace("[sweep]", "[sweeps]"), "a [sweep] table is required"),
])
def test_a_bad_spec_names_the_key(tmp_path: Path, edit, expected: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load_spec(spec_file(tmp_path, edit(ISSUE_EXAMPLE)))
    assert expected in str(caught.value) and "sweep.toml" in str(caught.value)


def test_a_missing_spec_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="no such file"):
        load_spec(tmp_path / "nope.toml")


def load_strategy(strategies_dir: Path, name: str):
    from freqtrade.resolvers import StrategyResolver

    config = {"strategy": name, "strategy_path": str(strategies_dir), "stake_currency": "USDT",
              "stake_amount": 100, "dry_run": True, "timeframe": "5m", "user_data_dir": strategies_dir.parent,
              "exchange": {"name": "binance", "pair_whitelist": []}, "entry_pricing": {}, "exit_pricing": {},
              "runmode": "backtest"}
    strategy = StrategyResolver.load_strategy(config)
    strategy.ft_bot_start()  # where Freqtrade loads the parameter values, as Backtesting does
    return strategy


def test_parameters_are_applied_through_freqtraders_parameter_file_and_checked(tmp_path: Path) -> None:
    source = ROOT / "strategies" / "EmaCrossSpot.py"
    assert source.is_file()
    staged = stage(source, "EmaCrossSpot", {"fast": 8}, tmp_path)
    assert (ROOT / "strategies" / "EmaCrossSpot.json").exists() is False  # the original folder is untouched
    strategy = load_strategy(staged, "EmaCrossSpot")
    assert strategy.fast.value == 8 and strategy.slow.value == 48  # the declared default stays
    assert check_applied(strategy, {"fast": 8}) == {"fast": 8}
    with pytest.raises(ConfigurationError, match=r"fsat is not a parameter of EmaCrossSpot \(its parameters: fast, slow\)"):
        check_applied(strategy, {"fsat": 8})
    with pytest.raises(ConfigurationError, match="fsat is not a parameter"):
        check_declared(load_strategy(staged, "EmaCrossSpot"), {"fsat": 8})


def test_values_merge_over_an_existing_hyperopt_parameter_file(tmp_path: Path) -> None:
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "EmaCrossSpot.py").write_text((ROOT / "strategies" / "EmaCrossSpot.py").read_text())
    (folder / "EmaCrossSpot.json").write_text(json.dumps(
        {"strategy_name": "EmaCrossSpot", "params": {"buy": {"fast": 20, "slow": 30}, "stoploss": {"stoploss": -0.05}}}))
    staged = stage(folder / "EmaCrossSpot.py", "EmaCrossSpot", {"fast": 10}, tmp_path / "work")
    strategy = load_strategy(staged, "EmaCrossSpot")
    assert (strategy.fast.value, strategy.slow.value, strategy.stoploss) == (10, 30, -0.05)


def test_best_ranks_completed_items_by_the_metric() -> None:
    rows = [{"run_id": "a", "status": "COMPLETED", "metrics": {"profit_total": 0.1, "max_drawdown_account": 0.2}},
            {"run_id": "b", "status": "COMPLETED", "metrics": {"profit_total": 0.3, "max_drawdown_account": 0.1}},
            {"run_id": "c", "status": "FAILED", "metrics": {}},
            {"run_id": "d", "status": "COMPLETED", "metrics": {"profit_total": float("nan")}}]
    assert [r["run_id"] for r in best(rows, "profit_total")] == ["b", "a"]
    assert [r["run_id"] for r in best(rows, "max_drawdown_account")] == ["b", "a"]  # lower is better
