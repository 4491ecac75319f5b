"""The terminal summary is for people: percentages, balances, an integer trade count, what to doubt
(synthetic data, inferred markets, warnings) and where the report is."""

from __future__ import annotations

import json
from pathlib import Path

from strategy_runner.supervisor.finish import print_done


def test_the_summary_reads_like_a_result(tmp_path: Path, capsys) -> None:
    (tmp_path / "report.html").write_text("<html></html>")
    (tmp_path / "backtest-result.json").write_text(json.dumps({
        "strategy": "EmaCrossSpot", "pairs": ["BTC/USDT"], "timeframe": "5m", "timeframe_source": "strategy",
        "timerange": "20241101-20241115", "stake": {"stake_currency": "USDT", "dry_run_wallet": 1000},
        "data_provenance": {"kind": "synthetic"}, "markets": {"inferred_pairs": ["ETH/BTC"]},
        "warnings": {"stake_below_minimum": {"count": 40, "first": "stake 0.05 below the minimum 5.0"}}}))
    item = {"run_id": "r1", "status": "COMPLETED", "results_uri": "file:///r1",
            "summary": {"profit_total": -0.0238, "profit_total_abs": -23.76, "max_drawdown_account": 0.0242,
                        "total_trades": 55.0, "winrate": 0.1273, "sharpe": -1.5}}
    print_done(item, tmp_path)
    shown = capsys.readouterr().out
    assert "run r1: COMPLETED  (EmaCrossSpot · BTC/USDT · 5m (from strategy) · 20241101-20241115)" in shown
    assert "profit         -2.38 %  (-23.76 USDT on 1,000.00 USDT -> 976.24 USDT)" in shown
    assert "trades         55      win rate 12.73 %" in shown
    assert "synthetic sample candles" in shown and "inferred for ETH/BTC" in shown
    assert "warning        stake_below_minimum x 40" in shown and f"report         {tmp_path / 'report.html'}" in shown
