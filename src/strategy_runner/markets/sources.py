"""The resolution order: the first snapshot found serves every pair it has; the rest are inferred
(MARKETS=infer) or the run fails naming the pair, the exchange and every place looked."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigurationError, ValidationError
from .snapshot import Snapshot, parse_snapshot

MarketsMode = Literal["snapshot", "infer", "live"]


@dataclass(frozen=True)
class MarketsResolution:
    snapshot: Snapshot  # the markets served (the file's, plus inferred entries)
    looked: tuple[str, ...]  # every place looked, in order

    @property
    def markets(self) -> dict[str, Any]:
        return self.snapshot.markets

    def describe(self) -> dict[str, Any]:
        return {**self.snapshot.describe(), "looked": list(self.looked)}


def candidates(exchange: str, *, markets_path: str | None, data_dir: Path, configs_dir: Path) -> list[str]:
    """The places a snapshot may be, in order."""
    if markets_path:
        return [markets_path]
    return [str(Path(data_dir) / "markets" / f"{exchange}.json"), str(Path(configs_dir) / "markets" / f"{exchange}.json")]


def resolve(exchange: str, pairs: list[str], *, mode: MarketsMode = "snapshot", markets_path: str | None = None,
            data_dir: Path, configs_dir: Path, fetch: Callable[[str], bytes] | None = None,
            infer_market: Callable[[str], dict[str, Any]] | None = None) -> MarketsResolution | None:
    """The markets for ``pairs`` on ``exchange``; None for MARKETS=live (the exchange's own).

    ``fetch`` reads an ``s3://`` MARKETS_PATH; ``infer_market`` builds one market entry from a
    pair's name and candles (markets.infer), used only with MARKETS=infer.
    """
    if mode == "live":
        return None
    exchange = exchange.lower()
    looked = candidates(exchange, markets_path=markets_path, data_dir=data_dir, configs_dir=configs_dir)
    snapshot = None
    for place in looked:
        raw = _read(place, fetch)
        if raw is not None:
            snapshot = parse_snapshot(raw, place)
            break
        if markets_path:
            raise ValidationError(f"MARKETS_PATH={markets_path!r}: no such file")
    if snapshot is not None and snapshot.exchange != exchange:
        raise ConfigurationError(f"markets snapshot {snapshot.origin} is for {snapshot.exchange!r} but the config's "
                                 f"exchange is {exchange!r}: its fees and ticks would be wrong for this exchange")
    missing = [p for p in pairs if snapshot is None or p not in snapshot.markets]
    if missing and mode == "infer" and infer_market is not None:
        inferred = {pair: infer_market(pair) for pair in missing}
        base = snapshot or Snapshot(exchange=exchange, markets={}, origin="inferred")
        snapshot = replace(base, markets={**base.markets, **inferred}, inferred=tuple(missing))
        missing = []
    if missing:
        where = f"the snapshot {snapshot.origin} has no such market" if snapshot else "no markets snapshot exists"
        raise ValidationError(
            f"{', '.join(missing)}: not a market of {exchange} ({where}; looked in {', '.join(looked)}). "
            f"Add it to a snapshot (strategy-runner markets snapshot --exchange {exchange}), point MARKETS_PATH at "
            "one, or set MARKETS=infer to build entries from the pair's name and candles")
    return MarketsResolution(snapshot=snapshot, looked=tuple(looked))


def _read(place: str, fetch: Callable[[str], bytes] | None) -> bytes | None:
    if place.startswith("s3://"):
        if fetch is None:
            raise ValidationError(f"MARKETS_PATH={place!r}: an s3:// path needs the S3 client")
        return fetch(place)
    path = Path(place)
    return path.read_bytes() if path.is_file() else None
