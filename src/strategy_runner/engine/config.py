"""The effective Freqtrade config of a run: base file, overlay, the run's own settings.

No Freqtrade import: the supervisor validates names and files before any work starts.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, ValidationError


def read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigurationError(f"{what} {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{what} {path} is not valid JSON: line {exc.lineno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{what} {path} must hold a JSON object")
    return data


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Overlay wins; nested objects merge key by key; lists are replaced."""
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def config_hash(config: dict[str, Any]) -> str:
    """SHA-256 of the config in canonical JSON (what determines the result, not paths)."""
    canonical = {k: v for k, v in config.items() if k not in ("datadir", "exportdirectory", "user_data_dir")}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, default=str).encode()).hexdigest()


def find_strategy(strategies_dir: Path, name: str) -> Path:
    """The file in ``strategies_dir`` defining class ``name``; anything else is a ValidationError."""
    pattern = re.compile(rf"^class\s+{re.escape(name)}\s*\(", re.MULTILINE)
    candidates = sorted(Path(strategies_dir).glob("*.py"))
    for path in candidates:
        if pattern.search(path.read_text(encoding="utf-8", errors="replace")):
            return path
    available = sorted(
        m for p in candidates for m in re.findall(r"^class\s+(\w+)\s*\(", p.read_text(errors="replace"), re.M)
    )
    raise ValidationError(
        f"STRATEGY={name!r}: no strategy class of that name in {strategies_dir}/ "
        f"(available: {', '.join(available) or 'none'})"
    )


def effective_config(
    base: dict[str, Any],
    overlay: dict[str, Any] | None,
    *,
    strategy: str,
    timeframe: str,
    timerange: str,
    pairs: tuple[str, ...],
) -> dict[str, Any]:
    """Base, then overlay, then the run's own values (which always win)."""
    config = deep_merge(base, overlay or {})
    config.update(strategy=strategy, timeframe=timeframe, timerange=timerange, backtest_cache="none")
    config.setdefault("export", "trades")
    exchange = dict(config.get("exchange") or {})
    if pairs:
        exchange["pair_whitelist"] = list(pairs)
    config["exchange"] = exchange
    whitelist = exchange.get("pair_whitelist") or []
    if not whitelist:
        raise ConfigurationError("no pairs: set PAIRS or exchange.pair_whitelist in the config")
    mode = config.get("trading_mode", "spot")
    if any((":" in p) != (mode == "futures") for p in whitelist):
        raise ValidationError(
            f"PAIRS={list(whitelist)!r}: {mode} config {'needs' if mode == 'futures' else 'cannot take'} "
            "futures pairs like BTC/USDT:USDT"
        )
    return config
