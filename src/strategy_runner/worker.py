"""The worker process: runs the backtest, writes results, reports how it ended.

Started by the supervisor (``runner.py``) as ``python -m strategy_runner.worker`` with
the same environment (RUN_ID and TRACE_ID fixed). It talks back through files in
``runs/<RUN_ID>/.worker/``: ``progress.json`` while it runs and ``outcome.json`` at the end.
A worker that dies without ``outcome.json`` is a failure the supervisor names.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from . import __version__, logs
from .engine import lazy_ccxt
from .engine.config import backtest_only, effective_config, find_strategy, read_json, strategy_hash, timeframe_source
from .errors import RunnerError, SpotInterrupted, error_name_for, exit_code_for
from .settings import Settings, load_settings

WORK = ".worker"
OUTCOME = "outcome.json"
PROGRESS = "progress.json"
OVERLAY = "config-overlay.json"
MARKETS_COPY = "markets-snapshot.json"  # an s3:// MARKETS_PATH, copied by the supervisor (no AWS here)


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


def build_spec(settings: Settings, work_dir: Path):  # -> EngineSpec
    from .engine.backtest import EngineSpec

    strategy_file = find_strategy(settings.strategies_dir, settings.strategy)
    base = read_json(settings.config_path, "config")
    overlay_path = work_dir / OVERLAY
    overlay = read_json(overlay_path, "config overlay") if overlay_path.exists() else None
    config = effective_config(
        base, overlay, strategy=settings.strategy, timeframe=settings.timeframe,
        timerange=settings.timerange, pairs=settings.pairs, enable_protections=settings.enable_protections,
    )
    _, ignored = backtest_only(base if overlay is None else {**base, **overlay})
    if ignored:
        logs.get_logger("strategy_runner.worker").info("config keys a backtest does not use are ignored",
                                                       ignored=ignored)
    markets = resolve_markets(settings, config)
    return EngineSpec(
        strategy=settings.strategy, strategy_file=strategy_file, config=config, data_dir=settings.data_dir,
        out_dir=settings.run_dir, work_dir=work_dir, markets=markets.markets if markets else None,
        fast_precision=settings.fast_precision,
        timeframe_source=timeframe_source(settings.timeframe, base if overlay is None else {**base, **overlay}),
        allow_missing_informative=settings.allow_missing_informative,
        markets_source=markets.snapshot.origin if markets else "the exchange (MARKETS=live)",
        markets_described=markets.describe() if markets else {"source": "live"},
        strategy_parameters=settings.strategy_parameters,
        fetchable=bool(settings.data_s3_path),
    )


def resolve_markets(settings: Settings, config: dict[str, Any]):  # -> MarketsResolution | None
    """The markets the backtest is served (markets/): a snapshot by the documented order, plus
    entries inferred from the candles for pairs no snapshot has when MARKETS=infer."""
    from .markets import resolve
    from .markets.infer import infer_market

    def infer(pair: str) -> dict[str, Any]:
        from freqtrade.data.history import load_pair_history
        from freqtrade.enums import CandleType

        from .engine.config import planned_timeframe

        futures = config.get("trading_mode") == "futures"
        candles = load_pair_history(
            pair=pair, timeframe=planned_timeframe(config, settings.strategies_dir, settings.strategy),
            datadir=settings.data_dir, data_format=config.get("dataformat_ohlcv", "feather"),
            candle_type=CandleType.FUTURES if futures else CandleType.SPOT)
        return infer_market(pair, candles, fee=config.get("fee"))

    def fetched(uri: str) -> bytes:  # the supervisor copied an s3:// MARKETS_PATH here
        return (settings.run_dir / WORK / MARKETS_COPY).read_bytes()

    pairs = list(config["exchange"].get("pair_whitelist") or [])
    return resolve(config["exchange"]["name"], pairs, mode=settings.markets_mode, markets_path=settings.markets_path,
                   data_dir=settings.data_dir, configs_dir=settings.configs_dir, fetch=fetched, infer_market=infer)


def summary(settings: Settings, spec, result, started: float) -> dict[str, Any]:
    """backtest-result.json: what ran, on what, with what result."""
    import freqtrade

    from .engine.config import config_hash
    from .sample_data import provenance

    return {
        "run_id": settings.run_id,
        "trace_id": settings.trace_id,
        "strategy": settings.strategy,
        "strategy_version": settings.strategy_version,
        "timeframe": result.timeframe,
        "timeframe_source": result.timeframe_source,
        "timerange": settings.timerange,
        "pairs": result.pairs,
        "trading_mode": result.trading_mode,
        "backtest_start": result.backtest_start,
        "backtest_end": result.backtest_end,
        "metrics": result.metrics,
        "per_pair": result.per_pair,
        "strategy_params": result.strategy_params,
        "stake": {k: spec.config.get(k) for k in ("stake_currency", "stake_amount", "max_open_trades", "dry_run_wallet")},
        "warnings": result.warnings,
        "data_quality": {
            "files": result.files_read,
            "per_file": result.data_quality,
            "duplicates": sum(q.get("duplicates", 0) for q in result.data_quality.values()),
            "gaps": sum(q.get("gaps", 0) for q in result.data_quality.values()),
            "missing_informative": result.missing_informative,
            "allow_missing_informative": spec.allow_missing_informative,
        },
        "protections": result.protections,
        "markets": spec.markets_described,
        "data_provenance": provenance(settings.data_dir, result.data_files),
        **({"sweep": {"sweep_id": settings.sweep_id, "parameters": settings.strategy_parameters or {}}}
           if settings.sweep_id or settings.strategy_parameters else {}),
        "identity": {
            "data_fingerprint": result.data_fingerprint,
            "data_files": result.data_files,
            "config_hash": config_hash(spec.config),
            "strategy_hash": strategy_hash(spec.strategy_file, settings.strategies_dir),
            "freqtrade_version": freqtrade.__version__,
            "runner_version": __version__,
            "image": "@".join(p for p in (settings.image_version, settings.image_revision) if p) or "local",
        },
        "files": {"freqtrade_zip": result.freqtrade_zip, "trades": result.trades_file, "log": "run.log"},
        "durations": {**result.durations, "worker_total_s": round(time.monotonic() - started, 3)},
    }


def result_notes(summary: dict[str, Any]) -> dict[str, Any]:
    """What the result was computed from, small enough for the status item: the timeframe
    and its source, warnings by kind, data gaps and duplicates, allowed missing informatives,
    whether the candles are the synthetic sample, the markets and any inferred ones."""
    quality = summary.get("data_quality") or {}
    return {
        "timeframe": summary.get("timeframe"),
        "timeframe_source": summary.get("timeframe_source"),
        "warnings": {k: v.get("count") for k, v in (summary.get("warnings") or {}).items()},
        "data_gaps": quality.get("gaps", 0),
        "data_duplicates": quality.get("duplicates", 0),
        "missing_informative": quality.get("missing_informative") or [],
        "protections_ran": (summary.get("protections") or {}).get("ran", False),
        "candles": (summary.get("data_provenance") or {}).get("kind"),
        "markets": (summary.get("markets") or {}).get("source"),
        "inferred_markets": (summary.get("markets") or {}).get("inferred_pairs") or [],
    }


def write_run_report(run_dir: Path, log: Any) -> None:
    """report.html beside the results (uploaded with them); a broken report never fails the run."""
    try:
        from .report.html import write_report

        write_report(run_dir)
    except Exception as exc:  # noqa: BLE001
        log.warning("could not write report.html", error=str(exc))


def _traceback_tail(exc: BaseException, lines: int = 12) -> list[str]:
    """The last lines of the original error's traceback (where the strategy failed), then
    the error it became; not the frames of our own re-raising."""
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    tail = "".join(traceback.format_exception(root, chain=False)).strip().splitlines()[-lines:]
    if root is not exc:
        tail.append(f"-> {type(exc).__name__}: {exc}")
    return tail


def main() -> int:
    started = time.monotonic()
    lazy_ccxt.install()
    settings = load_settings()
    run_dir = settings.run_dir
    work_dir = run_dir / WORK
    work_dir.mkdir(parents=True, exist_ok=True)
    logs.configure(settings.log_format, settings.log_level, run_dir / "run.log")
    logs.bind_run(settings.run_id, settings.trace_id, process="worker")
    log = logs.get_logger("strategy_runner.worker")

    stop_requested: list[int] = []
    state: dict[str, Any] = {"phase": "data_load", "fraction": 0.0, "reporting": False}

    def on_signal(signum: int, _frame: Any) -> None:
        """SIGTERM/SIGINT: stop the backtest; the supervisor records why.

        Freqtrade polls its abort flag (set by the engine's stop watcher) only while converting
        and in its loop; anywhere else (imports, data load, indicators, export), or on a
        second signal, stop right here by raising in the main thread.
        """
        stop_requested.append(signum)
        if state["reporting"]:
            return
        polling = state["phase"] in ("convert", "backtest") and state["fraction"] < 1.0
        if len(stop_requested) > 1 or not polling:
            raise KeyboardInterrupt(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)

    last_progress = [0.0]

    def on_progress(phase: str, fraction: float) -> None:
        new_phase = phase != state["phase"]
        state.update(phase=phase, fraction=fraction)
        now = time.monotonic()
        if new_phase or now - last_progress[0] >= 0.5 or fraction >= 1.0:
            last_progress[0] = now
            write_json(work_dir / PROGRESS, {"phase": phase, "fraction": round(fraction, 4)})

    error: BaseException | None = None
    try:
        from .engine import backtest

        spec = build_spec(settings, work_dir)
        on_progress("data_load", 0.0)
        result = backtest.run(spec, on_progress=on_progress, stop=lambda: bool(stop_requested))
        # The backtest's frames and rows are garbage now; hand them back before the report
        # reads candles again, so the two do not add up (the run's peak was here, measured).
        from .engine.lean_memory import release_memory

        release_memory()
        write_json(run_dir / "backtest-result.json", summary(settings, spec, result, started))
        log.info("backtest finished", trades=int(result.metrics["total_trades"]),
                 profit_total=result.metrics["profit_total"])
        write_run_report(run_dir, log)
        write_json(work_dir / OUTCOME, {"ok": True})
    except BaseException as exc:  # noqa: BLE001 - every way out is reported
        state["reporting"] = True
        if isinstance(exc, KeyboardInterrupt):
            name = exc.args[0] if exc.args else "SIGINT"
            error = SpotInterrupted(f"{name} received during phase {state['phase']}; backtest stopped")
        else:
            error = exc
        tail = _traceback_tail(exc)
        log.error("backtest failed", error_type=error_name_for(error), error=str(error))
        write_json(work_dir / OUTCOME, {
            "ok": False,
            "error_type": error_name_for(error),
            "error_message": str(error) or type(error).__name__,
            "retryable": isinstance(error, RunnerError) and error.retryable,
            "traceback_tail": "\n".join(tail),
            **({"fetch": [f.to_dict() for f in error.files]} if hasattr(error, "files") else {}),
        })
    return exit_code_for(error)


#: ``python -m strategy_runner.worker --warm``: started by the supervisor before it claims the run.
WARM = "--warm"


def serve_warm() -> int:
    """Import what every backtest imports (Freqtrade's backtesting: seconds of CPU) while the
    supervisor claims the run, then wait for the environment to run with, one JSON line on
    stdin (the claim may adopt another TRACE_ID). End of input: the run needs no worker."""
    lazy_ccxt.install()
    import freqtrade.optimize.backtesting  # noqa: F401

    from .engine import backtest  # noqa: F401

    line = sys.stdin.readline()
    if not line.strip():
        return 0
    from .settings import replace_environment

    replace_environment(json.loads(line))
    return main()


if __name__ == "__main__":
    code = serve_warm() if WARM in sys.argv[1:] else main()
    # Skip interpreter teardown (over a second after a big backtest): a stopped run's whole
    # budget is ECS's 30 s stopTimeout. Every file is closed; logs are flushed here.
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
