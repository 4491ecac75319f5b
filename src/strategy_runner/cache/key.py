"""The inputs that determine a backtest's result, and the cache key over exactly those.

Computed in the supervisor before the worker starts, without importing Freqtrade, by the
same functions the worker uses for backtest-result.json "identity" (engine.config,
engine.data), so a key and the identity of the run it names always agree.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any

from .. import __version__
from ..artifacts.base import sha256_file
from ..engine.config import config_hash, effective_config, find_strategy, read_json
from ..engine.data import fingerprint, needed_files
from ..identity import image
from ..settings import Settings

#: Bump when the meaning of a cached result changes (e.g. new result files).
KEY_SCHEMA = "1"
#: Fields of backtest-result.json "identity" that the key covers (and that must match).
IDENTITY_FIELDS = ("data_fingerprint", "strategy_hash", "config_hash", "freqtrade_version", "runner_version", "image")


class NotCacheable(Exception):
    """The run's inputs cannot be pinned down before it runs (the message says why)."""


def strategy_hash(strategy_file: Path) -> str:
    return hashlib.sha256(Path(strategy_file).read_bytes()).hexdigest()


def freqtrade_version() -> str:
    """The installed Freqtrade's version, read from its metadata (importing it takes seconds)."""
    return metadata.version("freqtrade")


def run_inputs(settings: Settings, overlay_path: Path | None = None) -> dict[str, Any]:
    """Everything that determines the result of the run ``settings`` describes."""
    if settings.live_markets:
        raise NotCacheable("LIVE_MARKETS=true: markets come from the exchange and may change")
    strategy_file = find_strategy(settings.strategies_dir, settings.strategy)
    base = read_json(settings.configs_dir / settings.config_name, "config")
    overlay = read_json(overlay_path, "config overlay") if overlay_path and overlay_path.exists() else None
    config = effective_config(base, overlay, strategy=settings.strategy, timeframe=settings.timeframe,
                              timerange=settings.timerange, pairs=settings.pairs)
    methods = [p.get("method") for p in config.get("pairlists") or [{"method": "StaticPairList"}]]
    if methods != ["StaticPairList"]:
        raise NotCacheable(f"pairlists {methods}: only a StaticPairList names its pairs before the run")
    files = needed_files(list(config["exchange"]["pair_whitelist"]), config["timeframe"],
                         str(config.get("trading_mode", "spot")))
    missing = [f.relpath for f in files if not (Path(settings.data_dir) / f.relpath).is_file()]
    if missing:
        raise NotCacheable(f"data files missing: {', '.join(missing)}")
    data_fingerprint, data_files = fingerprint(settings.data_dir, files)
    markets = settings.configs_dir / "markets" / f"{config['exchange']['name']}.json"
    return {
        "data_fingerprint": data_fingerprint,
        "data_files": data_files,
        "strategy_hash": strategy_hash(strategy_file),
        "config_hash": config_hash(config),
        "freqtrade_version": freqtrade_version(),
        "runner_version": __version__,
        "image": image(settings),
        "markets_hash": sha256_file(markets) if markets.is_file() else None,
        # Engine switches that may change numbers (getattr: older settings lack them).
        "engine_options": {"fast_precision": getattr(settings, "fast_precision", None)},
    }


def cache_key(inputs: dict[str, Any]) -> str:
    keyed = {k: inputs.get(k) for k in (*IDENTITY_FIELDS, "markets_hash", "engine_options")}
    return hashlib.sha256(json.dumps({"schema": KEY_SCHEMA, **keyed}, sort_keys=True).encode()).hexdigest()


def identity_mismatch(inputs: dict[str, Any], identity: dict[str, Any]) -> list[str]:
    """Fields where the worker's recorded identity disagrees with the key's inputs."""
    return [k for k in IDENTITY_FIELDS if inputs.get(k) != identity.get(k)]
