"""Price candles of the pairs a run traded, from the files the backtest read (``data_quality.files``,
any format Freqtrade writes), cut to the backtest period and merged into at most
``MAX_CANDLES`` candles per pair, so a year of 5m candles draws as a few hundred; the last
``DETAIL_CANDLES`` are also drawn as they are, where single trades can be told apart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .data import RunData

#: Pairs drawn (the most traded first) and candles per chart: they bound the report's size.
MAX_PAIRS = 6
MAX_CANDLES = 400
DETAIL_CANDLES = 300


def data_dir() -> Path:
    """Where the run read its candles: the worker and the supervisor both run with DATA_DIR
    (default ``data``), the same variable the settings read."""
    from ..settings import data_dir_setting

    return data_dir_setting()


def charted_pairs(run: RunData) -> list[str]:
    counts: dict[str, int] = {}
    for t in run.trades:
        counts[t["pair"]] = counts.get(t["pair"], 0) + 1
    return sorted(counts, key=lambda p: (-counts[p], p))[:MAX_PAIRS]


def main_file(run: RunData, pair: str) -> str | None:
    for f in (run.summary.get("data_quality") or {}).get("files") or []:
        if f.get("pair") == pair and f.get("role") == "main":
            return f.get("file")
    return None


def load_candles(path: Path, start: float, end: float) -> dict[str, Any]:
    """The period's candles of ``path``: ``candles`` (columns ts/open/high/low/close) merged to
    at most MAX_CANDLES, ``rows`` in the period, ``per`` candles merged into each drawn one; when
    merged, ``detail``: the last DETAIL_CANDLES as they are, where single trades can be told apart."""
    import numpy as np
    import pandas as pd

    from ..datacheck.candles import read_candle_file

    frame = read_candle_file(path, columns=["date", "open", "high", "low", "close"])
    dates = pd.to_datetime(frame["date"], utc=True)
    seconds = (dates - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
    keep = (seconds >= start) & (seconds <= end)  # Freqtrade's backtest_end is the last candle's date
    cols = {"ts": seconds[keep], **{c: frame[c].to_numpy(dtype=float)[keep] for c in ("open", "high", "low", "close")}}
    n = len(cols["ts"])
    if n == 0:
        return {"candles": {k: [] for k in cols}, "rows": 0, "per": 1}
    per = -(-n // MAX_CANDLES)  # ceil
    starts = np.arange(0, n, per)
    ends = np.minimum(starts + per, n) - 1
    merged = {"ts": cols["ts"][starts], "open": cols["open"][starts], "close": cols["close"][ends],
              "high": np.maximum.reduceat(cols["high"], starts), "low": np.minimum.reduceat(cols["low"], starts)}
    out: dict[str, Any] = {"candles": {k: v.tolist() for k, v in merged.items()}, "rows": n, "per": per}
    if per > 1:
        out["detail"] = {k: v[-DETAIL_CANDLES:].tolist() for k, v in cols.items()}
    return out


def markers(run: RunData, pair: str, since: float = float("-inf")) -> dict[str, list[tuple[float, float]]]:
    """Entries (long, short) and exits (win, loss) of ``pair`` at their time and price, from ``since``."""
    out: dict[str, list[tuple[float, float]]] = {"long": [], "short": [], "win": [], "loss": []}
    for t in run.trades:
        if t["pair"] == pair:
            if t["open_ts"] >= since:
                out["short" if t["is_short"] else "long"].append((t["open_ts"], t["open_rate"]))
            if t["close_ts"] >= since:
                out["win" if t["profit_abs"] > 0 else "loss"].append((t["close_ts"], t["close_rate"]))
    return out


def pair_charts(run: RunData) -> list[dict[str, Any]]:
    """One entry per charted pair: its candles, markers and how they were merged (see
    ``load_candles``), or why they are not drawn (``missing``)."""
    start, end = run.period
    out = []
    candles_dir = data_dir()  # once: reading the settings costs ~8 ms
    for pair in charted_pairs(run):
        name = main_file(run, pair)
        entry: dict[str, Any] = {"pair": pair, "file": name, "markers": markers(run, pair)}
        if name is None:
            entry["missing"] = "the run recorded no candle file for this pair"
        elif not (candles_dir / name).is_file():
            entry["missing"] = f"{name} is not in DATA_DIR ({candles_dir}) where the report was written"
        else:
            entry.update(load_candles(candles_dir / name, start, end))
            if "detail" in entry:
                entry["detail_markers"] = markers(run, pair, since=entry["detail"]["ts"][0])
        out.append(entry)
    return out
