"""The Freqtrade internals the runner replaces: how markets are loaded, and log setup.

``Exchange.__init__`` always reloads markets through ccxt over the network. We replace
the coroutine ``Exchange._api_reload_markets`` with one that hands ccxt a shipped
snapshot (``ccxt.set_markets``), so Freqtrade's own reload path, validation included,
runs unchanged and no socket is opened. This depends on Freqtrade internals: the version
is pinned in pyproject.toml and checked here, and tests/test_offline_seam.py fails on an
upgrade that moves the seam.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError

PINNED_FREQTRADE = "2026.9"


def source_sha256(func: Any) -> str:
    """What a seam pins a Freqtrade function with: the hash of its source."""
    return hashlib.sha256(inspect.getsource(func).encode()).hexdigest()


def not_pinned() -> str | None:
    """Why a seam proven against the pinned Freqtrade must not be installed here, or None."""
    import freqtrade

    if freqtrade.__version__ != PINNED_FREQTRADE:
        return f"freqtrade {freqtrade.__version__} is not the pinned {PINNED_FREQTRADE}"
    return None


def unproven(proven: dict[str, str], functions: Callable[[], dict[str, Any]]) -> str | None:
    """Why a seam proven against the pinned Freqtrade must not be installed here (another
    version, or the functions whose source changed), or None. ``functions`` is called only
    for the pinned version (another may not have them)."""
    if reason := not_pinned():
        return reason
    changed = [name for name, func in functions().items() if source_sha256(func) != proven.get(name)]
    return "freqtrade changed since the seam was proven: " + ", ".join(changed) if changed else None


def load_snapshot(path: Path) -> dict[str, Any]:
    """The markets of one snapshot file, validated (markets.snapshot: the one reader of the format)."""
    from ..markets.snapshot import parse_snapshot

    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigurationError(f"markets snapshot {path} does not exist") from None
    return parse_snapshot(raw, str(path)).markets


def check_seam() -> None:
    """Fail loudly if the Freqtrade in use is not the one the seam was written for."""
    import freqtrade
    from freqtrade.exchange.exchange import Exchange

    if freqtrade.__version__ != PINNED_FREQTRADE:
        raise ConfigurationError(
            f"freqtrade {freqtrade.__version__} is installed; the offline markets seam is "
            f"written for {PINNED_FREQTRADE} exactly (pyproject.toml pins it)"
        )
    target = getattr(Exchange, "_api_reload_markets", None)
    if target is None or not inspect.iscoroutinefunction(target):
        raise ConfigurationError("freqtrade's Exchange._api_reload_markets moved: the offline seam needs updating")


def serve_markets_offline(markets: dict[str, Any]) -> None:
    """Make every Exchange in this process load ``markets`` instead of calling the exchange."""
    check_seam()
    from freqtrade.exchange.exchange import Exchange

    async def _api_reload_markets(self: Exchange, reload: bool = False) -> None:
        self._api_async.set_markets(markets)

    Exchange._api_reload_markets = _api_reload_markets  # type: ignore[method-assign]


def keep_our_logging() -> None:
    """Stop Freqtrade's Configuration from replacing the root log handlers.

    Its ``setup_logging`` installs its own handlers (plain text, colours); ours already
    route every standard-library record through structlog with run_id and trace_id.
    """
    from freqtrade.configuration import configuration

    if not callable(getattr(configuration, "setup_logging", None)):
        raise ConfigurationError("freqtrade's configuration.setup_logging moved: the logging seam needs updating")
    configuration.setup_logging = lambda config: None
