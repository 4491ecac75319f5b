"""Progress: a bar on a terminal, log lines at every 10% (or 30 s) elsewhere."""

from __future__ import annotations

import io

import structlog

from strategy_runner.progress import ProgressReporter, overall_fraction


def _feed(reporter: ProgressReporter) -> None:
    reporter.update({"phase": "data_load", "fraction": 0.0})
    for phase in ("dataload", "analyze", "convert", "backtest"):
        for i in range(11):
            reporter.update({"phase": phase, "fraction": i / 10})


def test_log_lines_every_ten_percent_and_the_bar_only_moves_forward():
    stream = io.StringIO()
    reporter = ProgressReporter(stream=stream, interactive=False)
    with structlog.testing.capture_logs() as logs:
        _feed(reporter)
    percents = [e["percent"] for e in logs if e["event"] == "progress"]
    assert percents[0] == 0 and percents[-1] == 100
    assert percents == sorted(percents) and len(percents) == len(set(percents))
    deciles = [p // 10 for p in percents]
    assert deciles == sorted(set(deciles))  # one line per 10% crossed, not more often
    assert 10 <= len(percents) <= 12
    assert stream.getvalue() == ""  # no bar when not a terminal

    assert reporter.update({"phase": "backtest", "fraction": 1.0}) == {"phase": "backtest", "fraction": 1.0,
                                                                       "percent": 100.0}
    assert overall_fraction("analyze", 0.5) > overall_fraction("dataload", 1.0)
    assert overall_fraction("unknown-phase", 0.5) is None


def test_terminal_gets_a_live_bar_ending_at_100_percent():
    stream = io.StringIO()
    reporter = ProgressReporter(stream=stream, interactive=True)
    with structlog.testing.capture_logs():
        _feed(reporter)
        reporter.update({"phase": "backtest", "fraction": 0.2})  # after the end: ignored
    frames = [f for f in stream.getvalue().split("\r\x1b[K") if f.strip()]
    assert frames[-1].rstrip("\n").startswith("[" + "#" * 30 + "] 100.0%")
    assert "backtest 100%" in frames[-1] and stream.getvalue().endswith("\n")


def test_a_slow_phase_still_logs_every_30_seconds(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("strategy_runner.progress.time.monotonic", lambda: clock[0])
    reporter = ProgressReporter(stream=io.StringIO(), interactive=False)
    with structlog.testing.capture_logs() as logs:
        reporter.update({"phase": "backtest", "fraction": 0.0})
        for _ in range(3):
            clock[0] += 31
            reporter.update({"phase": "backtest", "fraction": 0.01})
    assert len([e for e in logs if e["event"] == "progress"]) == 4
