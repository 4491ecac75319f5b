"""Run one Freqtrade backtest through its Python API and return a typed result."""

from __future__ import annotations

import contextlib
import csv
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BacktestError, ConfigurationError, DataError, SpotInterrupted
from ..logs import get_logger
from . import data as candle_data
from .offline import keep_our_logging, serve_markets_offline

log = get_logger(__name__)

#: Seconds Freqtrade gets to notice its abort flag before the main thread is interrupted.
ABORT_GRACE_SECONDS = 1.0

HEADLINE = (
    "profit_total", "profit_total_abs", "max_drawdown_account", "max_drawdown_abs", "sharpe", "sortino",
    "calmar", "cagr", "sqn", "profit_factor", "expectancy", "total_trades", "wins", "losses", "draws", "winrate",
)
PER_PAIR = ("trades", "profit_total", "profit_total_abs", "profit_mean", "wins", "losses", "draws", "winrate")
TRADE_COLUMNS = (
    "pair", "is_short", "open_date", "close_date", "open_rate", "close_rate", "amount", "stake_amount",
    "leverage", "profit_ratio", "profit_abs", "exit_reason", "trade_duration", "funding_fees", "fee_open", "fee_close",
)


@dataclass(frozen=True)
class EngineSpec:
    strategy: str
    strategy_file: Path
    config: dict[str, Any]  # the effective config (engine.config.effective_config)
    data_dir: Path
    out_dir: Path  # the run's results directory
    work_dir: Path  # scratch space Freqtrade may write to
    markets: dict[str, Any] | None  # None: load live markets from the exchange
    fast_precision: bool = True  # engine.fast_precision instead of the row-wise stock inference


@dataclass
class BacktestResult:
    metrics: dict[str, float]
    per_pair: list[dict[str, Any]]
    pairs: list[str]
    trading_mode: str
    freqtrade_zip: str  # file names relative to the results directory
    trades_file: str
    data_fingerprint: str
    data_files: dict[str, str]
    strategy_params: dict[str, Any]
    backtest_start: str
    backtest_end: str
    durations: dict[str, float] = field(default_factory=dict)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _write_trades(trades: list[dict[str, Any]], path: Path) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=TRADE_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(trades)


def run(spec: EngineSpec, *, on_progress: Callable[[str, float], None], stop: Callable[[], bool]) -> BacktestResult:
    """Backtest ``spec``; writes the Freqtrade zip and trades.csv into ``spec.out_dir``.

    ``stop()`` is polled through Freqtrade's own abort flag: when it turns true the loop
    ends within milliseconds and SpotInterrupted is raised.
    """
    started = time.monotonic()
    if spec.markets is not None:
        serve_markets_offline(spec.markets)
    from freqtrade.configuration import Configuration
    from freqtrade.enums import RunMode
    from freqtrade.exceptions import DependencyException, FreqtradeException, OperationalException
    from freqtrade.optimize.backtesting import Backtesting

    if spec.fast_precision:
        from .fast_precision import install as install_fast_precision

        install_fast_precision()

    export_dir = spec.work_dir / "backtest_results"
    export_dir.mkdir(parents=True, exist_ok=True)
    config_file = spec.work_dir / "config.json"
    config_file.write_text(json.dumps(spec.config, indent=2, default=str))
    args = {
        "config": [str(config_file)],
        "strategy": spec.strategy,
        "strategy_path": str(spec.strategy_file.parent),
        "datadir": str(spec.data_dir),
        "user_data_dir": str(spec.work_dir / "user_data"),
        "exportdirectory": str(export_dir),
        "export": "trades",
        "cache": "none",
    }
    (spec.work_dir / "user_data").mkdir(exist_ok=True)
    keep_our_logging()
    try:
        config = Configuration(args, RunMode.BACKTEST).get_config()
    except OperationalException as exc:
        raise ConfigurationError(f"freqtrade rejected the config: {exc}") from exc

    phase_started: dict[str, float] = {}  # Freqtrade phase (dataload, analyze, ...) -> first seen

    def progress(task: Any) -> None:
        # Freqtrade reports an overall phase bar and a within-phase bar; the phase name
        # already tells the first, so only the second is passed on.
        # "analyze" has no total: report it at 0 so a stop or a memory error names the right phase.
        if task.id != getattr(bt, "_progress_task_overall", None):
            phase_started.setdefault(str(task.description), time.monotonic())
            on_progress(str(task.description), float(task.completed) / float(task.total) if task.total else 0.0)

    bt = None
    phase = "init"
    try:
        bt = Backtesting(config, progress_callback=progress)
        pairs = list(bt.pairlists.whitelist)
        files = candle_data.needed_files(pairs, bt.timeframe, str(bt.trading_mode.value))
        candle_data.check_coverage(spec.data_dir, files, config["timerange"], bt.required_startup)
        fingerprint, per_file = candle_data.fingerprint(spec.data_dir, files)
        _watch_stop(bt, stop)
        phase = "backtest"
        on_progress("startup", 0.0)
        loop_started = time.monotonic()
        # Freqtrade prints its result tables to stdout; keep them as a report instead.
        with open(spec.out_dir / "freqtrade-report.txt", "w") as report, contextlib.redirect_stdout(report):
            bt.start()
        finished = time.monotonic()
    except (DataError, SpotInterrupted):
        raise
    except DependencyException as exc:
        if "Stop requested" in str(exc):
            raise SpotInterrupted(f"backtest stopped on request during {phase}") from exc
        raise BacktestError(f"freqtrade: {exc}") from exc
    except OperationalException as exc:
        if str(exc).startswith("No data found"):
            raise DataError(f"freqtrade: {exc}") from exc
        raise ConfigurationError(f"freqtrade: {exc}") from exc
    except FreqtradeException as exc:
        raise BacktestError(f"freqtrade: {exc}") from exc
    except Exception as exc:  # the strategy's own code raising
        raise BacktestError(f"{type(exc).__name__} during {phase}: {exc}") from exc
    finally:
        stop_thread = getattr(bt, "_runner_stop_thread", None)
        if stop_thread is not None:
            stop_thread.set()
        if bt is not None:
            Backtesting.cleanup()

    strategy_stats = bt.results["strategy"].get(spec.strategy)
    if strategy_stats is None:
        raise BacktestError("freqtrade produced no result for the strategy")
    zip_src = _latest_zip(export_dir)
    zip_name = zip_src.name
    shutil.copy2(zip_src, spec.out_dir / zip_name)
    _write_trades(strategy_stats.get("trades", []), spec.out_dir / "trades.csv")
    metrics = {k: _number(strategy_stats.get(k)) for k in HEADLINE}
    per_pair = [
        {"pair": row["key"], **{k: _number(row.get(k)) for k in PER_PAIR}}
        for row in strategy_stats.get("results_per_pair", [])
        if row.get("key") != "TOTAL"
    ]
    strategy = bt.strategylist[0]
    params = {name: p.value for name, p in strategy.enumerate_parameters()}
    return BacktestResult(
        metrics=metrics,
        per_pair=per_pair,
        pairs=pairs,
        trading_mode=str(bt.trading_mode.value),
        freqtrade_zip=zip_name,
        trades_file="trades.csv",
        data_fingerprint=fingerprint,
        data_files=per_file,
        strategy_params=params,
        backtest_start=str(strategy_stats.get("backtest_start")),
        backtest_end=str(strategy_stats.get("backtest_end")),
        durations={
            **_phase_durations(phase_started, loop_started, finished),
            "engine_total_s": round(time.monotonic() - started, 3),
        },
    )


def _phase_durations(phase_started: dict[str, float], started: float, finished: float) -> dict[str, float]:
    """Data load (candles, precision, indicators) until Freqtrade's loop starts; then loop and export."""
    loop = phase_started.get("backtest", finished)
    return {"data_load_s": round(loop - started, 3), "backtest_s": round(finished - loop, 3)}


def _latest_zip(export_dir: Path) -> Path:
    pointer = export_dir / ".last_result.json"
    try:
        name = json.loads(pointer.read_text())["latest_backtest"]
        return export_dir / name
    except (FileNotFoundError, KeyError, json.JSONDecodeError):
        zips = sorted(export_dir.glob("backtest-result-*.zip"))
        if not zips:
            raise BacktestError(f"freqtrade wrote no result zip into {export_dir}") from None
        return zips[-1]


def _watch_stop(bt: Any, stop: Callable[[], bool]) -> None:
    """Turn ``stop()`` into Freqtrade's abort flag, checked by a small daemon thread."""
    import _thread
    import signal
    import threading

    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.05):
            if stop():
                bt.abort = True
                # Freqtrade polls the flag only in its loops; past them (export), interrupt
                # the main thread like a second signal would (worker.py's handler raises).
                if not done.wait(ABORT_GRACE_SECONDS):
                    _thread.interrupt_main(signal.SIGINT)
                return

    threading.Thread(target=watch, name="stop-watch", daemon=True).start()
    bt._runner_stop_thread = done
