"""Run one Freqtrade backtest through its Python API and return a typed result."""

from __future__ import annotations

import contextlib
import csv
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BacktestError, ConfigurationError, DataError, SpotInterrupted
from ..logs import get_logger
from . import data as candle_data
from .offline import keep_our_logging, serve_markets_offline

log = get_logger(__name__)

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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

    def progress(task: Any) -> None:
        if task.total:
            on_progress(str(task.description), float(task.completed) / float(task.total))

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
        on_progress("backtest", 0.0)
        loop_started = time.monotonic()
        # Freqtrade prints its result tables to stdout; keep them as a report instead.
        with open(spec.out_dir / "freqtrade-report.txt", "w") as report, contextlib.redirect_stdout(report):
            bt.start()
        backtest_s = time.monotonic() - loop_started
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
        if bt is not None:
            Backtesting.cleanup()
    stop_thread = getattr(bt, "_runner_stop_thread", None)
    if stop_thread is not None:
        stop_thread.set()

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
    params = {k: v for space in ("buy", "sell", "protection") for k, v in _params(strategy, space).items()}
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
        durations={"backtest_s": round(backtest_s, 3), "engine_total_s": round(time.monotonic() - started, 3)},
    )


def _params(strategy: Any, space: str) -> dict[str, Any]:
    try:
        return {name: p.value for name, p in strategy.detect_parameters(space)}
    except Exception:  # noqa: BLE001 - parameters are informative only
        return {}


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
    import threading

    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.05):
            if stop():
                bt.abort = True
                return

    threading.Thread(target=watch, name="stop-watch", daemon=True).start()
    bt._runner_stop_thread = done
