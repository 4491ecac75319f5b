"""The inputs that determine a backtest's result, and the cache key over exactly those.

Computed in the supervisor without importing Freqtrade. The candle files a run reads
depend on the strategy (informative pairs, ``dp.get_pair_dataframe``) and the config
(``timeframe_detail``, futures mark and funding), which only Freqtrade can resolve; the
worker records them (backtest-result.json ``identity.data_files``). So the key is built in
two steps:

1. ``run_inputs`` without data: strategy and helper modules, config, markets, versions,
   engine switches. Its ``file_set_key`` names the set of files a run with these inputs
   reads, remembered from the first such run.
2. ``run_inputs`` with that file set: the SHA-256 of every one of those files is added, and
   ``cache_key`` hashes it all. A run whose file set is not known yet is a miss.

The same functions give the run's recorded identity, so a key and the identity of the run
it names always agree (the hook refuses to store a result when they do not).
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
from ..engine.config import strategy_hash as _strategy_hash
from ..engine.data import data_fingerprint
from ..identity import image
from ..settings import Settings

#: Bump when the meaning of a cached result changes (e.g. new result files).
KEY_SCHEMA = "2"
#: Fields of backtest-result.json "identity" that the key covers (and that must match).
IDENTITY_FIELDS = ("data_fingerprint", "strategy_hash", "config_hash", "freqtrade_version", "runner_version", "image")
#: What the key covers besides the identity fields.
OTHER_KEYED = ("markets_hash", "engine_options")


class NotCacheable(Exception):
    """The run's inputs cannot be pinned down before it runs (the message says why)."""


def freqtrade_version() -> str:
    """The installed Freqtrade's version, read from its metadata (importing it takes seconds)."""
    return metadata.version("freqtrade")


def run_inputs(settings: Settings, overlay_path: Path | None = None,
               data_files: list[str] | None = None) -> dict[str, Any]:
    """Everything that determines the result of the run ``settings`` describes; the data
    part (``data_fingerprint``, ``data_files``) only when the files it reads are given."""
    if settings.markets_mode == "live":
        raise NotCacheable("MARKETS=live: markets come from the exchange and may change")
    strategy_file = find_strategy(settings.strategies_dir, settings.strategy)
    base = read_json(settings.config_path, "config")
    overlay = read_json(overlay_path, "config overlay") if overlay_path and overlay_path.exists() else None
    config = effective_config(base, overlay, strategy=settings.strategy, timeframe=settings.timeframe,
                              timerange=settings.timerange, pairs=settings.pairs,
                              enable_protections=settings.enable_protections)
    methods = [p.get("method") for p in config.get("pairlists") or [{"method": "StaticPairList"}]]
    if methods != ["StaticPairList"]:
        raise NotCacheable(f"pairlists {methods}: only a StaticPairList names its pairs before the run")
    markets = markets_file(settings, config["exchange"]["name"])
    inputs: dict[str, Any] = {
        "strategy_hash": _strategy_hash(strategy_file, settings.strategies_dir),
        "config_hash": config_hash(config),
        "freqtrade_version": freqtrade_version(),
        "runner_version": __version__,
        "image": image(settings),
        "markets_hash": sha256_file(markets) if markets and markets.is_file() else None,
        # Engine switches and inputs beside the files that may change numbers or outcomes.
        "engine_options": {"fast_precision": settings.fast_precision,
                           "allow_missing_informative": settings.allow_missing_informative,
                           "markets": settings.markets_mode,
                           "strategy_parameters": settings.strategy_parameters or {}},
    }
    if data_files is not None:
        inputs["data_fingerprint"], inputs["data_files"] = data_fingerprint(settings.data_dir, data_files)
    return inputs


def markets_file(settings: Settings, exchange: str) -> Path | None:
    """The snapshot the run is served, by the markets package's own order (an s3:// MARKETS_PATH
    as the supervisor copied it for the worker)."""
    from ..markets.sources import candidates
    from ..worker import MARKETS_COPY, WORK

    if (settings.markets_path or "").startswith("s3://"):
        return settings.run_dir / WORK / MARKETS_COPY
    places = candidates(exchange.lower(), markets_path=settings.markets_path, data_dir=settings.data_dir,
                        configs_dir=settings.configs_dir)
    return next((Path(p) for p in places if Path(p).is_file()), None)


def file_set_key(inputs: dict[str, Any]) -> str:
    """Names the set of files runs with these inputs (data aside) read."""
    keyed = {k: inputs.get(k) for k in (*IDENTITY_FIELDS, *OTHER_KEYED) if k != "data_fingerprint"}
    return hashlib.sha256(json.dumps({"schema": KEY_SCHEMA, "file_set": True, **keyed}, sort_keys=True).encode()).hexdigest()


def cache_key(inputs: dict[str, Any]) -> str:
    if "data_fingerprint" not in inputs:
        raise NotCacheable("the files the run reads are not known yet")
    keyed = {k: inputs.get(k) for k in (*IDENTITY_FIELDS, *OTHER_KEYED)}
    return hashlib.sha256(json.dumps({"schema": KEY_SCHEMA, **keyed}, sort_keys=True).encode()).hexdigest()


def identity_mismatch(inputs: dict[str, Any], identity: dict[str, Any]) -> list[str]:
    """Fields where the worker's recorded identity disagrees with the key's inputs."""
    return [k for k in IDENTITY_FIELDS if inputs.get(k) != identity.get(k)]
