"""`strategy-runner backtest --help` lists every variable the run is read from."""

from __future__ import annotations

import pytest

from strategy_runner.cli import main
from strategy_runner.settings import documented_variables


def test_backtest_help_lists_every_variable_with_its_default(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["backtest", "--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    for names, default, _meaning in documented_variables():
        assert f"{' / '.join(names)} [{default}]" in shown
    assert "PAIRS [unset]" in shown and "STRATEGY [EmaCrossSpot]" in shown
