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

from ..errors import BacktestError, ConfigurationError, DataError, SpotInterrupted, ValidationError
from ..logs import get_logger
from . import data as candle_data
from . import parameters
from .data import CandleFile
from .offline import keep_our_logging, serve_markets_offline
from .result_warnings import ResultWarnings

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
    timeframe_source: str = "config"  # TIMEFRAME | config | strategy (engine.config.timeframe_source)
    allow_missing_informative: bool = False
    markets_source: str = "markets snapshot"  # named in errors about pairs
    markets_described: dict[str, Any] = field(default_factory=dict)  # markets.MarketsResolution.describe()
    strategy_parameters: dict[str, Any] | None = None  # STRATEGY_PARAMETERS (engine.parameters)
    fetchable: bool = False  # DATA_S3_PATH is set: files Freqtrade will read that are not on disk can be fetched


class FilesNotFetched(DataError):
    """Files the backtest reads (informative pairs, timeframe_detail) are not on disk yet but may be
    under DATA_S3_PATH: the supervisor fetches them and starts the worker again, once."""

    def __init__(self, files: list[CandleFile]):
        super().__init__("not fetched yet: " + "; ".join(f"{f.role} {f.describe()} ({f.relpath})" for f in files))
        self.files = files


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
    timeframe: str = ""
    timeframe_source: str = ""
    files_read: list[dict[str, str]] = field(default_factory=list)  # CandleFile.to_dict of each
    data_quality: dict[str, dict[str, Any]] = field(default_factory=dict)  # relpath -> CandleQuality
    missing_informative: list[str] = field(default_factory=list)  # allowed (ALLOW_MISSING_INFORMATIVE)
    warnings: dict[str, dict[str, Any]] = field(default_factory=dict)
    protections: dict[str, Any] = field(default_factory=dict)
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
    if spec.fast_precision:
        from .fast_precision import install as install_fast_precision
        from .fast_trade_value import install as install_fast_trade_value

        install_fast_precision()
        install_fast_trade_value()
    from .lean_memory import install as install_lean_memory
    from .phase_progress import install as install_phase_progress
    from .strategy_calls import install as install_strategy_calls

    install_lean_memory()
    install_phase_progress()
    install_strategy_calls()

    export_dir = spec.work_dir / "backtest_results"
    export_dir.mkdir(parents=True, exist_ok=True)
    config_file = spec.work_dir / "config.json"
    config_file.write_text(json.dumps(spec.config, indent=2, default=str))
    args = {
        "config": [str(config_file)],
        "strategy": spec.strategy,
        # With STRATEGY_PARAMETERS: a staged copy whose parameter file carries them.
        "strategy_path": str(parameters.stage(spec.strategy_file, spec.strategy, spec.strategy_parameters, spec.work_dir)
                             if spec.strategy_parameters else spec.strategy_file.parent),
        "datadir": str(spec.data_dir),
        "user_data_dir": str(spec.work_dir / "user_data"),
        "exportdirectory": str(export_dir),
        "export": "trades",
        "cache": "none",
    }
    (spec.work_dir / "user_data").mkdir(exist_ok=True)
    keep_our_logging()
    check_pairs_in_markets(spec)
    warnings = ResultWarnings()
    warnings.install()
    try:
        return _run(spec, args, warnings, on_progress=on_progress, stop=stop, started=started, export_dir=export_dir)
    finally:
        warnings.uninstall()


def _run(spec: EngineSpec, args: dict[str, Any], warnings: ResultWarnings, *, on_progress: Callable[[str, float], None],
         stop: Callable[[], bool], started: float, export_dir: Path) -> BacktestResult:
    from freqtrade.configuration import Configuration
    from freqtrade.enums import RunMode
    from freqtrade.exceptions import DependencyException, FreqtradeException, OperationalException
    from freqtrade.optimize.backtesting import Backtesting

    from . import files as loaded

    try:
        config = Configuration(args, RunMode.BACKTEST).get_config()
    except OperationalException as exc:
        raise ConfigurationError(f"freqtrade rejected the config: {schema_error_detail(exc, spec.config)}") from exc

    phase_started: dict[str, float] = {}  # Freqtrade phase (dataload, analyze, ...) -> first seen

    passed_on = {"description": None, "next": 0.0}  # what was last passed on, and when the next is due

    def progress(task: Any) -> None:
        # Freqtrade reports an overall phase bar and a within-phase bar; the phase name
        # already tells the first, so only the second is passed on.
        # "analyze" has no total: report it at 0 so a stop or a memory error names the right phase.
        # Called on every candle: a phase's first call, each further 0.1 % and its end go on.
        if (task.completed < passed_on["next"] and task.description == passed_on["description"]
                and task.completed < (task.total or 0)):
            return
        if task.id != getattr(bt, "_progress_task_overall", None):
            phase_started.setdefault(str(task.description), time.monotonic())
            on_progress(str(task.description), float(task.completed) / float(task.total) if task.total else 0.0)
            passed_on.update(description=task.description, next=task.completed + (task.total or 0) / 1000)

    bt = None
    phase = "init"
    files: dict[str, CandleFile] = {}
    quality: dict[str, dict[str, Any]] = {}
    missing_informative: list[str] = []
    timerange = config["timerange"]

    def check_informative(new: list[CandleFile], startup: int) -> None:
        """Missing or short informative data: an error, or recorded when the setting allows it.

        An allowed missing file still counts as read (fingerprinted as missing), so the
        result is not reused once the file is there.
        """
        problems = []
        for f in new:
            if f.relpath in files:
                continue
            try:
                candle_data.check_coverage(spec.data_dir, [f], timerange, 0)
            except DataError as exc:
                detail = str(exc).removeprefix("data does not cover the run: ")
                if spec.allow_missing_informative:
                    files[f.relpath] = f
                    missing_informative.append(detail)
                    warnings.add("missing_informative", detail)
                else:
                    problems.append(detail)
                continue
            quality.update(candle_data.check_values(spec.data_dir, [f], timerange, startup))
            files[f.relpath] = f
        if problems:
            raise DataError(
                "informative data missing: " + "; ".join(problems)
                + " (the strategy reads it; ALLOW_MISSING_INFORMATIVE=true runs without it)"
            )

    try:
        bt = Backtesting(config, progress_callback=progress)
        if spec.strategy_parameters:  # fail before the data load on a name the strategy does not declare
            parameters.check_declared(bt.strategylist[0], spec.strategy_parameters)
        pairs = list(bt.pairlists.whitelist)
        check_no_pair_dropped(spec, pairs, warnings)
        planned, informatives_unknown = loaded.planned_files(bt)
        absent = [f for f in planned if not (Path(spec.data_dir) / f.relpath).is_file()]
        if absent and spec.fetchable:  # the supervisor fetched only the main files it could foresee
            raise FilesNotFetched(absent)
        if informatives_unknown:
            warnings.add("informative_pairs_unknown", informatives_unknown)
        read_first = [f for f in planned if f.role != "informative"]
        candle_data.check_coverage(spec.data_dir, read_first, timerange, bt.required_startup)
        quality.update(candle_data.check_values(spec.data_dir, read_first, timerange, bt.required_startup))
        files.update({f.relpath: f for f in read_first})
        check_informative([f for f in planned if f.role == "informative"], bt.required_startup)
        # Series the strategy reads without declaring them are checked when first read.
        loaded.LoadRecorder(bt, lambda f: check_informative([f], bt.required_startup))
        count_refused_stakes(bt, warnings)
        protections = protections_summary(bt)
        _watch_stop(bt, stop)
        phase = "backtest"
        on_progress("startup", 0.0)
        loop_started = time.monotonic()
        # Freqtrade prints its result tables to stdout; keep them as a report instead.
        with open(spec.out_dir / "freqtrade-report.txt", "w") as report, contextlib.redirect_stdout(report):
            bt.start()
        finished = time.monotonic()
    except (ConfigurationError, DataError, SpotInterrupted, ValidationError):
        raise
    except DependencyException as exc:
        if "Stop requested" in str(exc):
            raise SpotInterrupted(f"backtest stopped on request during {phase}") from exc
        raise BacktestError(f"freqtrade: {exc}") from exc
    except OperationalException as exc:
        if str(exc).startswith("No data found"):
            raise DataError(f"freqtrade: {exc}") from exc
        if str(exc).startswith("Impossible to load Strategy"):
            raise strategy_import_error(spec, exc, warnings) from exc
        if str(exc).startswith("No pair in whitelist"):
            raise ValidationError(f"freqtrade: {exc} {pairs_removed_detail(spec, [], warnings)}") from exc
        raise ConfigurationError(f"freqtrade: {schema_error_detail(exc, spec.config)}") from exc
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
    if spec.strategy_parameters:  # Freqtrade set them in ft_bot_start: each must have taken effect
        parameters.check_applied(strategy, spec.strategy_parameters)
    params = {name: p.value for name, p in strategy.enumerate_parameters()}
    # Fingerprinted after the run: the strategy may have read series it never declared.
    fingerprint, per_file = candle_data.fingerprint(spec.data_dir, list(files.values()))
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
        timeframe=str(bt.timeframe),
        timeframe_source=spec.timeframe_source,
        files_read=[f.to_dict() for f in sorted(files.values(), key=lambda f: f.relpath)],
        data_quality=quality,
        missing_informative=missing_informative,
        warnings=warnings.summary(),
        protections=protections,
        durations={
            **_phase_durations(phase_started, loop_started, finished),
            "engine_total_s": round(time.monotonic() - started, 3),
        },
    )


def check_pairs_in_markets(spec: EngineSpec) -> None:
    """Every pair asked for is an active market of the config's kind (that it is a market at all,
    markets.resolve checked, naming every place looked).

    Freqtrade drops such pairs with a log line (or says "No pair in whitelist." naming none).
    """
    if spec.markets is None:
        return
    futures = spec.config.get("trading_mode", "spot") == "futures"
    problems = []
    for pair in spec.config["exchange"]["pair_whitelist"]:
        market = spec.markets[pair]
        if market.get("active") is False:
            problems.append(f"{pair} is an inactive market in the {spec.markets_source}")
        elif bool(market.get("swap") or market.get("type") == "swap") != futures:
            problems.append(f"{pair} is a {market.get('type')} market, not usable in a "
                            f"{'futures' if futures else 'spot'} config")
    if problems:
        raise ValidationError("PAIRS: " + "; ".join(problems))


def check_no_pair_dropped(spec: EngineSpec, whitelist: list[str], warnings: ResultWarnings) -> None:
    """A StaticPairList runs every pair asked for or fails; filters may drop (counted as a warning)."""
    asked = list(spec.config["exchange"]["pair_whitelist"])
    dropped = [p for p in asked if p not in whitelist]
    if not dropped:
        return
    methods = [p.get("method") for p in spec.config.get("pairlists") or [{"method": "StaticPairList"}]]
    if methods == ["StaticPairList"]:
        raise ValidationError(f"PAIRS: freqtrade would run without {', '.join(dropped)}: "
                              f"{pairs_removed_detail(spec, dropped, warnings)}")
    warnings.add("pairs_removed_by_pairlist", f"{', '.join(dropped)} removed by the pairlists {methods}",
                 len(dropped))


def pairs_removed_detail(spec: EngineSpec, dropped: list[str], warnings: ResultWarnings) -> str:
    said = [m for m in warnings.messages if any(p in m for p in dropped or spec.config["exchange"]["pair_whitelist"])]
    blacklisted = [p for p in dropped if p in (spec.config["exchange"].get("pair_blacklist") or [])]
    reasons = ([f"in pair_blacklist: {', '.join(blacklisted)}"] if blacklisted else []) + said[:5]
    return "; ".join(reasons) or "freqtrade's pairlist removed them (see run.log)"


def strategy_import_error(spec: EngineSpec, exc: Exception, warnings: ResultWarnings) -> BacktestError:
    """Freqtrade's "Impossible to load Strategy" with the reason it logged (e.g. No module named 'ta')."""
    ours = [m for m in warnings.import_errors if spec.strategy_file.name in m] or warnings.import_errors
    if not ours:
        return BacktestError(f"freqtrade: {exc}")
    reason = ours[0].split(" due to ", 1)[-1]
    reason = reason[1:-1] if reason.startswith("'") and reason.endswith("'") else reason  # Freqtrade quotes it
    return BacktestError(f"strategy {spec.strategy} could not be imported from {spec.strategy_file}: {reason}")


def schema_error_detail(exc: Exception, config: dict[str, Any]) -> str:
    """Freqtrade's schema message with the field it is about (Freqtrade drops the path)."""
    try:
        from freqtrade.config_schema.config_schema import CONF_SCHEMA
        from freqtrade.configuration.config_validation import FreqtradeValidator

        schema = {**CONF_SCHEMA, "required": []}
        for error in FreqtradeValidator(schema).iter_errors(config):
            if error.message == str(exc) and error.path:
                return f"{exc} (at {'.'.join(str(p) for p in error.path)})"
    except Exception:  # noqa: BLE001 - the message alone is still the error
        pass
    return str(exc)


def count_refused_stakes(bt: Any, warnings: ResultWarnings) -> None:
    """Count entries Freqtrade refuses because the stake is below the pair's minimum.

    In a backtest Freqtrade logs nothing for these (Wallets._local_log is silent there).
    Same rule as Wallets.validate_stake_amount: more than 30 % below the minimum is refused.
    """
    wallets = bt.wallets
    validate = wallets.validate_stake_amount

    def validate_stake_amount(pair: str, stake_amount: Any, min_stake_amount: Any, *args: Any, **kwargs: Any) -> Any:
        result = validate(pair, stake_amount, min_stake_amount, *args, **kwargs)
        if not result and stake_amount and min_stake_amount and stake_amount * 1.3 < min_stake_amount:
            warnings.add("stake_below_minimum",
                         f"{pair}: stake {stake_amount} is below the minimum {min_stake_amount}; entry refused")
        return result

    wallets.validate_stake_amount = validate_stake_amount


def protections_summary(bt: Any) -> dict[str, Any]:
    strategy = bt.strategylist[0]
    try:
        defined = [p.get("method") for p in (strategy.protections or [])]
    except Exception:  # noqa: BLE001 - a protections property that raises fails in Freqtrade itself
        defined = []
    enabled = bool(bt.config.get("enable_protections", False))
    return {"enabled": enabled, "defined": defined, "ran": enabled and bool(defined)}


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
        while not done.wait(0.2):  # a stop is seen within 0.2 s; waking more often costs the loop the GIL
            if stop():
                bt.abort = True
                # Freqtrade polls the flag only in its loops; past them (export), interrupt
                # the main thread like a second signal would (worker.py's handler raises).
                if not done.wait(ABORT_GRACE_SECONDS):
                    _thread.interrupt_main(signal.SIGINT)
                return

    threading.Thread(target=watch, name="stop-watch", daemon=True).start()
    bt._runner_stop_thread = done
