"""What a run was asked to compute, known at claim time: recorded on the status item so a
replay of a COMPLETED RUN_ID can tell "the same run again" (report it, exit 0) from
"different inputs under the same id" (RunConflict naming what differs).

Cheap on purpose (names, a few file hashes, no data read): it runs before the claim.
Add a field here when a new setting changes results; a field absent from an older item
is not compared.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .engine.config import find_strategy
from .settings import Settings


def _file_hash(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError:
        return None


def _trading_mode(config_path: Path) -> str | None:
    try:
        return str(json.loads(config_path.read_text()).get("trading_mode", "spot"))
    except (OSError, ValueError, AttributeError):
        return None


def claim_inputs(settings: Settings) -> dict[str, Any]:
    """The request's inputs, each as a short comparable value."""
    try:
        strategy_file = find_strategy(settings.strategies_dir, settings.strategy)
    except Exception:  # noqa: BLE001 - pre-flight reports a missing strategy; here it is just unknown
        strategy_file = settings.strategies_dir / f"{settings.strategy}.py"
    config_path = settings.config_path
    return {
        "strategy": settings.strategy,
        "strategy_hash": _file_hash(strategy_file),
        "pairs": ",".join(settings.pairs),
        "timerange": settings.timerange,
        "timeframe": settings.timeframe,
        "config": settings.config_name,
        "config_hash": _file_hash(config_path),
        "config_s3_path": settings.config_s3_path,
        "trading_mode": _trading_mode(config_path),
        "data_s3_path": settings.data_s3_path,
        # Engine knobs that change numbers (getattr: a knob may be added by another module).
        "fast_precision": getattr(settings, "fast_precision", None),
        "markets": settings.markets_mode,
        "markets_path": settings.markets_path,
        "strategy_parameters": settings.strategy_parameters,
        "sweep_id": settings.sweep_id,
        "enable_protections": getattr(settings, "enable_protections", None),
        "allow_missing_informative": getattr(settings, "allow_missing_informative", None),
    }


def fingerprint(inputs: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def differences(recorded: dict[str, Any] | None, now: dict[str, Any]) -> list[str]:
    """'key: recorded -> now' for every input both know and that differs."""
    recorded = recorded or {}
    return [f"{key}: {recorded[key]!r} -> {value!r}" for key, value in now.items()
            if key in recorded and recorded[key] != value]
