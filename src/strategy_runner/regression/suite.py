"""The regression suite file: cases (explicit, or strategies × configs × pairs × timeranges)
and per-metric tolerances. TOML or JSON; paths in it are relative to the file."""

from __future__ import annotations

import itertools
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from ..settings import parse_pairs, parse_timerange

#: Counts compare exactly unless the suite says otherwise; everything else within a hair
#: (Freqtrade's JSON round trip differs in the last float digit).
EXACT_BY_DEFAULT = frozenset({"total_trades", "wins", "losses", "draws", "trades"})
DEFAULT_TOLERANCE = {"abs": 1e-9, "rel": 1e-6}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


@dataclass(frozen=True)
class Tolerance:
    abs: float = 0.0
    rel: float = 0.0

    def allows(self, baseline: float, current: float) -> bool:
        if baseline != baseline and current != current:  # both NaN: unchanged
            return True
        if baseline != baseline or current != current:
            return False
        return abs(current - baseline) <= max(self.abs, self.rel * abs(baseline))

    def describe(self) -> str:
        if self.abs == 0 and self.rel == 0:
            return "exact"
        return f"abs {self.abs:g} / rel {self.rel:g}"


@dataclass(frozen=True)
class Case:
    name: str
    strategy: str
    config: str
    pairs: tuple[str, ...]
    timerange: str
    timeframe: str = "5m"
    env: dict[str, str] = field(default_factory=dict)
    tolerances: dict[str, Tolerance] = field(default_factory=dict)

    def definition(self) -> dict[str, Any]:
        """What the baseline records about the case (a changed definition is a changed case)."""
        out = {"strategy": self.strategy, "config": self.config, "pairs": list(self.pairs),
               "timerange": self.timerange, "timeframe": self.timeframe}
        if self.env:
            out["env"] = dict(self.env)
        return out


@dataclass(frozen=True)
class Suite:
    path: Path
    cases: list[Case]
    strategies_dir: Path | None
    configs_dir: Path | None
    data_dir: Path | None
    data_s3_path: str | None
    baselines_dir: Path
    tolerances: dict[str, Tolerance]
    default_tolerance: Tolerance

    def tolerance(self, case: Case, metric: str) -> Tolerance:
        """Case setting, then suite setting (full key, then the metric's own name), then defaults."""
        short = metric.rsplit(":", 1)[-1]
        for table in (case.tolerances, self.tolerances):
            for key in (metric, short):
                if key in table:
                    return table[key]
        return Tolerance(0.0, 0.0) if short in EXACT_BY_DEFAULT else self.default_tolerance


def _tolerance(where: str, raw: Any) -> Tolerance:
    if not isinstance(raw, dict) or not set(raw) <= {"abs", "rel"}:
        raise ConfigurationError(f"{where}: expected a table like {{abs = 0.0001, rel = 0.001}}, got {raw!r}")
    try:
        tol = Tolerance(float(raw.get("abs", 0.0)), float(raw.get("rel", 0.0)))
    except (TypeError, ValueError):
        raise ConfigurationError(f"{where}: abs and rel must be numbers, got {raw!r}") from None
    if tol.abs < 0 or tol.rel < 0:
        raise ConfigurationError(f"{where}: tolerances cannot be negative, got {raw!r}")
    return tol


def _tolerances(where: str, raw: Any) -> dict[str, Tolerance]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{where}: expected a table of metric = {{abs, rel}}")
    return {k: _tolerance(f"{where}.{k}", v) for k, v in raw.items()}


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:80]


def _case(where: str, raw: dict[str, Any], name: str | None = None) -> Case:
    known = {"name", "strategy", "config", "pairs", "timerange", "timeframe", "env", "tolerances"}
    unknown = set(raw) - known
    if unknown:
        raise ConfigurationError(f"{where}: unknown keys {sorted(unknown)} (known: {sorted(known)})")
    for key in ("strategy", "pairs", "timerange"):
        if key not in raw:
            raise ConfigurationError(f"{where}: missing {key!r}")
    try:
        pairs = parse_pairs(raw["pairs"])
        timerange = parse_timerange(str(raw["timerange"]))
    except ValueError as exc:
        raise ConfigurationError(f"{where}: {exc}") from None
    if not pairs:
        raise ConfigurationError(f"{where}: pairs is empty")
    config = str(raw.get("config") or ("futures.json" if ":" in pairs[0] else "base.json"))
    name = str(raw.get("name") or name or "")
    if not _NAME.match(name):
        raise ConfigurationError(f"{where}: name {name!r} must be 1-80 letters, digits, '.', '_' or '-'")
    env = raw.get("env") or {}
    if not isinstance(env, dict):
        raise ConfigurationError(f"{where}.env: expected a table of VARIABLE = \"value\"")
    return Case(name=name, strategy=str(raw["strategy"]), config=config, pairs=pairs, timerange=timerange,
                timeframe=str(raw.get("timeframe", "5m")), env={str(k): str(v) for k, v in env.items()},
                tolerances=_tolerances(f"{where}.tolerances", raw.get("tolerances")))


def _matrix(where: str, raw: dict[str, Any]) -> list[Case]:
    """strategies × configs × pairs × timeranges (pairs: a list of pair lists)."""
    lists = {}
    for key in ("strategies", "pairs", "timeranges"):
        if not isinstance(raw.get(key), list) or not raw[key]:
            raise ConfigurationError(f"{where}: {key!r} must be a non-empty list")
        lists[key] = raw[key]
    configs = raw.get("configs") or [None]
    cases = []
    for strategy, config, pairs, timerange in itertools.product(lists["strategies"], configs, lists["pairs"],
                                                                 lists["timeranges"]):
        pair_list = [pairs] if isinstance(pairs, str) else list(pairs)
        name = slug("-".join([strategy, Path(config).stem if config else "default",
                              "+".join(pair_list), str(timerange)]))
        item = {"strategy": strategy, "pairs": pair_list, "timerange": timerange,
                **{k: raw[k] for k in ("timeframe", "env", "tolerances") if k in raw}}
        if config:
            item["config"] = config
        cases.append(_case(f"{where} ({name})", item, name=name))
    return cases


def load_suite(path: Path) -> Suite:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigurationError(f"regression suite {path} does not exist") from None
    try:
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"regression suite {path} does not parse: {exc}") from None
    base = path.parent
    paths = raw.get("paths") or {}

    def rel(key: str) -> Path | None:
        return (base / paths[key]).resolve() if paths.get(key) else None

    cases = [_case(f"{path}: case[{i}]", c) for i, c in enumerate(raw.get("case") or raw.get("cases") or [])]
    for i, m in enumerate(raw.get("matrix") or []):
        cases += _matrix(f"{path}: matrix[{i}]", m)
    if not cases:
        raise ConfigurationError(f"regression suite {path}: no [[case]] or [[matrix]] entries")
    names = [c.name for c in cases]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigurationError(f"regression suite {path}: case names used twice: {', '.join(dupes)}")
    tolerances = _tolerances(f"{path}: tolerances", raw.get("tolerances"))
    default = tolerances.pop("default", Tolerance(**DEFAULT_TOLERANCE))
    return Suite(
        path=path, cases=cases, strategies_dir=rel("strategies_dir"), configs_dir=rel("configs_dir"),
        data_dir=rel("data_dir"), data_s3_path=paths.get("data_s3_path"),
        baselines_dir=rel("baselines_dir") or (base / "baselines").resolve(),
        tolerances=tolerances, default_tolerance=default,
    )
