"""The effective Freqtrade config of a run: base file, overlay, the run's own settings.

No Freqtrade import: the supervisor validates names and files before any work starts.
"""

from __future__ import annotations

import ast
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


#: Keys of a live bot's config that a backtest never reads (Freqtrade's own example configs carry
#: them): dropped, so neither they nor the secrets among them reach the run's saved config.
LIVE_ONLY_KEYS = ("api_server", "telegram", "webhook", "discord", "producer", "external_message_consumer",
                  "bot_name", "initial_state", "force_entry_enable", "db_url", "cancel_open_orders_on_exit",
                  "internals", "add_config_files", "user_data_dir", "datadir", "logfile")
LIVE_ONLY_EXCHANGE_KEYS = ("key", "api_key", "secret", "password", "uid", "walletAddress", "privateKey",
                           "ccxt_config", "ccxt_async_config", "ccxt_sync_config")


def backtest_only(config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``config`` without what only a live bot reads, and the names of what was dropped."""
    ignored = [k for k in LIVE_ONLY_KEYS if k in config]
    kept = {k: v for k, v in config.items() if k not in LIVE_ONLY_KEYS}
    exchange = dict(kept.get("exchange") or {})
    dropped = [k for k in LIVE_ONLY_EXCHANGE_KEYS if exchange.get(k) not in (None, "", {})]
    ignored += [f"exchange.{k}" for k in dropped]
    kept["exchange"] = {k: v for k, v in exchange.items() if k not in LIVE_ONLY_EXCHANGE_KEYS}
    return kept, ignored


def effective_config(
    base: dict[str, Any],
    overlay: dict[str, Any] | None,
    *,
    strategy: str,
    timeframe: str | None,
    timerange: str,
    pairs: tuple[str, ...],
    enable_protections: bool = False,
) -> dict[str, Any]:
    """Base, then overlay, then the run's own values (which always win).

    ``timeframe`` None keeps the config's, and with none there Freqtrade takes the strategy's.
    """
    config, _ = backtest_only(deep_merge(base, overlay or {}))
    config.update(strategy=strategy, timerange=timerange, backtest_cache="none")
    if timeframe:
        config["timeframe"] = timeframe
    if enable_protections:
        config["enable_protections"] = True
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


def timeframe_source(timeframe_setting: str | None, config: dict[str, Any]) -> str:
    """Where the timeframe that runs comes from: TIMEFRAME, the config, or the strategy."""
    if timeframe_setting:
        return "TIMEFRAME"
    return "config" if config.get("timeframe") else "strategy"


def declared_timeframe(strategy_file: Path, name: str) -> str | None:
    """``timeframe = "1h"`` in the class body of ``name``, read without importing anything.

    For estimates made before the worker (memory, S3 fetch); the worker records the real one.
    """
    try:
        tree = ast.parse(Path(strategy_file).read_text(encoding="utf-8", errors="replace"))
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            for stmt in node.body:
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
                value = getattr(stmt, "value", None)
                if any(isinstance(t, ast.Name) and t.id == "timeframe" for t in targets) and isinstance(value, ast.Constant):
                    return str(value.value)
    return None


def planned_timeframe(config: dict[str, Any], strategies_dir: Path, strategy: str) -> str:
    """The timeframe the run will most likely use, known before Freqtrade loads the strategy:
    the effective config's, else the strategy's declared one, else 5m (Freqtrade's template)."""
    if config.get("timeframe"):
        return str(config["timeframe"])
    try:
        declared = declared_timeframe(find_strategy(strategies_dir, strategy), strategy)
    except ValidationError:
        declared = None
    return declared or "5m"


def strategy_sources(strategy_file: Path, strategies_dir: Path) -> list[Path]:
    """The strategy's file and every module it imports from ``strategies_dir``, transitively.

    Freqtrade puts the strategies directory on the import path, so ``import helpers`` or
    ``from lib.signals import x`` there changes the result as much as the strategy does.
    """
    root = Path(strategies_dir).resolve()
    seen: list[Path] = []
    todo = [Path(strategy_file).resolve()]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.append(path)
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
        except SyntaxError:
            continue  # Freqtrade will say what is wrong with it
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = path.parent if node.level else root
                for _ in range(max(node.level - 1, 0)):
                    base = base.parent
                module = (node.module or "").split(".") if node.module else []
                # "from pkg import mod" may name a submodule as well as an attribute
                names = [".".join(module)] + [".".join([*module, a.name]) for a in node.names]
                todo += [m for n in names if n for m in _module_files(base, n)]
                continue
            else:
                continue
            todo += [m for n in names for m in _module_files(root, n)]
    return sorted(seen)


def _module_files(base: Path, dotted: str) -> list[Path]:
    """Files under ``base`` that importing ``dotted`` runs (each package's __init__ too)."""
    parts = dotted.split(".")
    found = []
    for i in range(1, len(parts) + 1):
        stem = base.joinpath(*parts[:i])
        if (stem / "__init__.py").is_file():
            found.append((stem / "__init__.py").resolve())
        elif stem.with_suffix(".py").is_file():
            found.append(stem.with_suffix(".py").resolve())
            break
        else:
            break
    return found


def strategy_hash(strategy_file: Path, strategies_dir: Path) -> str:
    """SHA-256 over the strategy's file and its helper modules (path relative to the directory, content)."""
    root = Path(strategies_dir).resolve()
    digest = hashlib.sha256()
    for path in strategy_sources(strategy_file, strategies_dir):
        name = str(path.relative_to(root)) if path.is_relative_to(root) else path.name
        digest.update(f"{name}\n".encode())
        digest.update(hashlib.sha256(path.read_bytes()).hexdigest().encode())
    return digest.hexdigest()
