"""The sweep spec (TOML) and its expansion into runs.

    [sweep]
    name = "ema-grid"                       # the sweep id; items are <name>-<n>
    strategy = "EmaCrossSpot"               # or strategies = ["A", "B"]
    config = "base.json"
    timeframe = "5m"                        # optional: the strategy's own when absent
    timeranges = ["20240901-20240915", "20240915-20241001"]
    pairs = [["BTC/USDT"], ["ETH/USDT"]]    # each inner list is one run's PAIRS
    metric = "profit_total"                 # optional: what "best" means (default profit_total)

    [parameters]                            # the strategy's hyperoptable parameters
    fast = [8, 12]

Items are the product strategies x timeranges x pair lists x parameter combinations, in
that order, numbered from 1: the same spec always gives the same RUN_IDs, which is what makes a
rerun resume.
"""

from __future__ import annotations

import itertools
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from ..settings import TIMEFRAMES, parse_pairs, parse_timerange

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_STRATEGY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
_PARAMETER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
KNOWN_KEYS = {"name", "strategy", "strategies", "config", "timeframe", "timeranges", "timerange", "pairs", "metric"}


@dataclass(frozen=True)
class SweepItem:
    number: int
    run_id: str
    strategy: str
    config: str
    timeframe: str | None
    timerange: str
    pairs: tuple[str, ...]
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def sweep_id(self) -> str:
        return self.run_id.rsplit("-", 1)[0]

    def document(self) -> dict[str, str | int]:
        """The item as the sweep workflow's Map reads it (items.json): every value a string the
        container environment takes as it is."""
        return {"number": self.number, "run_id": self.run_id, "sweep_id": self.sweep_id, "strategy": self.strategy,
                "config": self.config, "timeframe": self.timeframe or "", "timerange": self.timerange,
                "pairs": ",".join(self.pairs), "strategy_parameters": json.dumps(self.parameters, sort_keys=True)}

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> SweepItem:
        return cls(number=int(doc["number"]), run_id=doc["run_id"], strategy=doc["strategy"], config=doc["config"],
                   timeframe=doc["timeframe"] or None, timerange=doc["timerange"],
                   pairs=tuple(doc["pairs"].split(",")), parameters=json.loads(doc["strategy_parameters"]))

    def environment(self) -> dict[str, str]:
        """The variables this item's `strategy-runner backtest` is read from (as the workflow sets them)."""
        doc = self.document()
        env = {"RUN_ID": doc["run_id"], "STRATEGY": doc["strategy"], "CONFIG": doc["config"],
               "TIMERANGE": doc["timerange"], "PAIRS": doc["pairs"], "STRATEGY_PARAMETERS": doc["strategy_parameters"],
               "SWEEP_ID": doc["sweep_id"]}
        if self.timeframe:
            env["TIMEFRAME"] = self.timeframe
        return env


@dataclass(frozen=True)
class SweepSpec:
    sweep_id: str
    path: Path
    items: tuple[SweepItem, ...]
    metric: str = "profit_total"


def _fail(path: Path, key: str, expected: str, got: Any) -> ValidationError:
    return ValidationError(f"{path}: {key} = {got!r}: expected {expected}")


def load_spec(path: Path, *, sweep_id: str | None = None) -> SweepSpec:
    try:
        doc = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ValidationError(f"sweep spec {path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(f"sweep spec {path}: not valid TOML ({exc})") from None
    sweep, grid = doc.get("sweep"), doc.get("parameters", {})
    if not isinstance(sweep, dict):
        raise ValidationError(f"sweep spec {path}: a [sweep] table is required")
    unknown = sorted(set(sweep) - KNOWN_KEYS) + sorted(f"[{k}]" for k in set(doc) - {"sweep", "parameters"})
    if unknown:
        raise ValidationError(f"sweep spec {path}: unknown key {', '.join(unknown)} (known: {', '.join(sorted(KNOWN_KEYS))})")
    name = sweep_id or sweep.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise _fail(path, "sweep.name", "letters, digits, '.', '_' or '-' (it prefixes every RUN_ID)", name)
    strategies = sweep.get("strategies", [sweep["strategy"]] if "strategy" in sweep else None)
    if not isinstance(strategies, list) or not strategies or not all(
            isinstance(s, str) and _STRATEGY.fullmatch(s) for s in strategies):
        raise _fail(path, "sweep.strategy/strategies", "a strategy class name or a list of them", strategies)
    config = sweep.get("config", "base.json")
    if not isinstance(config, str) or not config:
        raise _fail(path, "sweep.config", "a config file name or path", config)
    timeframe = sweep.get("timeframe")
    if timeframe is not None and timeframe not in TIMEFRAMES:
        raise _fail(path, "sweep.timeframe", f"one of {', '.join(TIMEFRAMES)}", timeframe)
    timeranges = sweep.get("timeranges", [sweep["timerange"]] if "timerange" in sweep else None)
    if not isinstance(timeranges, list) or not timeranges:
        raise _fail(path, "sweep.timeranges", "a list of YYYYMMDD-YYYYMMDD ranges", timeranges)
    for timerange in timeranges:
        try:
            parse_timerange(timerange)
        except (TypeError, ValueError) as exc:
            raise _fail(path, "sweep.timeranges", f"Freqtrade timeranges ({exc})", timerange) from None
    pair_lists = sweep.get("pairs")
    if not isinstance(pair_lists, list) or not pair_lists:
        raise _fail(path, "sweep.pairs", 'a list of pair lists, e.g. [["BTC/USDT"], ["ETH/USDT"]]', pair_lists)
    pairs = []
    for entry in pair_lists:
        try:
            pairs.append(parse_pairs(entry if isinstance(entry, list) else [entry]))
        except ValueError as exc:
            raise _fail(path, "sweep.pairs", f"pairs like BTC/USDT ({exc})", entry) from None
    if not isinstance(grid, dict):
        raise _fail(path, "[parameters]", "a table of parameter = [values]", grid)
    for key, values in grid.items():
        if not _PARAMETER.fullmatch(key) or not isinstance(values, list) or not values:
            raise _fail(path, f"parameters.{key}", "a non-empty list of values", values)
    metric = sweep.get("metric", "profit_total")
    names = list(grid)
    combos = [dict(zip(names, values)) for values in itertools.product(*(grid[n] for n in names))]
    items = [
        SweepItem(number=n, run_id=f"{name}-{n}", strategy=strategy, config=config, timeframe=timeframe,
                  timerange=timerange, pairs=pair_list, parameters=parameters)
        for n, (strategy, timerange, pair_list, parameters) in enumerate(
            itertools.product(strategies, timeranges, pairs, combos), start=1)
    ]
    return SweepSpec(sweep_id=name, path=Path(path), items=tuple(items), metric=metric)
