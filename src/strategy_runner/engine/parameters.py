"""STRATEGY_PARAMETERS: values for the strategy's hyperoptable parameters, applied the way
Freqtrade applies a parameter file.

Freqtrade loads ``<strategy file>.json`` beside the strategy (what hyperopt writes) and sets
each declared parameter it names. The runner stages a copy of the strategies folder in the
run's work dir (the original may be read-only, and is never changed), merges the values over
any parameter file already there, and after the strategy is loaded checks that every value
named a declared parameter and took effect: a misspelt name must not run the defaults silently.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError

SPACES = ("buy", "sell", "protection")


def stage(strategy_file: Path, strategy: str, values: dict[str, Any], work_dir: Path) -> Path:
    """A copy of the strategies folder with ``values`` in the strategy's parameter file; its path."""
    staged = Path(work_dir) / "strategies"
    shutil.rmtree(staged, ignore_errors=True)
    shutil.copytree(strategy_file.parent, staged, ignore=shutil.ignore_patterns("__pycache__"))
    params_file = staged / strategy_file.with_suffix(".json").name
    existing: dict[str, Any] = {}
    if params_file.is_file():
        try:
            existing = json.loads(params_file.read_text()).get("params", {})
        except (ValueError, AttributeError) as exc:
            raise ConfigurationError(f"parameter file {strategy_file.with_suffix('.json')} is not valid: {exc}") from None
    params = {space: {**(existing.get(space) or {}), **values} for space in SPACES}
    for key, value in existing.items():  # roi, stoploss, trailing, ... stay as the file had them
        params.setdefault(key, value)
    params_file.write_text(json.dumps({"strategy_name": strategy, "params": params}, indent=2, default=str))
    return staged


def check_declared(strategy_object: Any, values: dict[str, Any]) -> None:
    """Before the run: every value names a parameter the strategy declares."""
    from freqtrade.strategy.hyper import detect_all_parameters

    declared = {name for space in detect_all_parameters(strategy_object).values() for name in space}
    unknown = sorted(set(values) - declared)
    if unknown:
        raise ConfigurationError(
            f"STRATEGY_PARAMETERS: {', '.join(unknown)} {'is not a parameter' if len(unknown) == 1 else 'are not parameters'}"
            f" of {type(strategy_object).__name__} (its parameters: {', '.join(sorted(declared)) or 'none'})")


def check_applied(strategy_object: Any, values: dict[str, Any]) -> dict[str, Any]:
    """After ``ft_bot_start`` (where Freqtrade sets them): every value is now its parameter's
    value. Returns the values as applied."""
    check_declared(strategy_object, values)
    declared = dict(strategy_object.enumerate_parameters())
    name = type(strategy_object).__name__
    for key, value in values.items():
        attr = declared[key]
        if attr.value != value:
            why = "it is declared with load=False" if not attr.load else (
                f"it is in space {attr.space!r}; parameter values reach the {', '.join(SPACES)} spaces")
            raise ConfigurationError(f"STRATEGY_PARAMETERS: {name}.{key} is {attr.value!r} after loading, "
                                     f"not {value!r}: {why}")
    return dict(values)
