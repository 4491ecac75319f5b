"""The sweep's answer: one row per item in ``sweep-result.json``, and the best items by a metric."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from .spec import SweepItem, SweepSpec

HEADLINE = ("profit_total", "profit_total_abs", "max_drawdown_account", "sharpe", "total_trades", "winrate")


def rows(items: list[SweepItem] | tuple[SweepItem, ...], recorded_items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for item, recorded in zip(items, recorded_items, strict=True):
        summary = recorded.get("summary") or {}
        out.append({
            "run_id": item.run_id, "status": recorded.get("status"), "strategy": item.strategy,
            "parameters": item.parameters, "pairs": list(item.pairs), "timerange": item.timerange,
            "timeframe": item.timeframe, "metrics": {k: summary.get(k) for k in HEADLINE if k in summary},
            "error": ({"type": recorded.get("error_type"), "message": recorded.get("error_message"),
                       "retryable": bool(recorded.get("retryable"))} if recorded.get("status") != "COMPLETED" else None),
            "results_uri": recorded.get("results_uri"),
        })
    return out


def best(table: list[dict[str, Any]], metric: str, count: int = 5) -> list[dict[str, Any]]:
    """Completed items by ``metric``, highest first (drawdown: lowest first)."""
    lower_is_better = metric in ("max_drawdown_account", "max_drawdown", "max_drawdown_abs")
    scored = [r for r in table if r["status"] == "COMPLETED" and isinstance(r["metrics"].get(metric), (int, float))
              and not math.isnan(r["metrics"][metric])]
    return sorted(scored, key=lambda r: r["metrics"][metric], reverse=not lower_is_better)[:count]


def document(sweep_id: str, metric: str, table: list[dict[str, Any]], seconds: float | None = None) -> dict[str, Any]:
    """sweep-result.json: counts by status, the best items, one row per item."""
    counts: dict[str, int] = {}
    for row in table:
        counts[row["status"] or "MISSING"] = counts.get(row["status"] or "MISSING", 0) + 1
    return {"sweep_id": sweep_id, "items": len(table), "counts": counts, "metric": metric,
            "wall_s": None if seconds is None else round(seconds, 1),
            "best": [r["run_id"] for r in best(table, metric)], "rows": table}


def write(spec: SweepSpec, table: list[dict[str, Any]], runs_dir: Path, seconds: float) -> Path:
    path = Path(runs_dir) / spec.sweep_id / "sweep-result.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**document(spec.sweep_id, spec.metric, table, seconds), "spec": str(spec.path)},
                               indent=2, default=str))
    return path


def comparison(sweep_id: str, metric: str, table: list[dict[str, Any]], runs_dir: Path) -> Path | None:
    """runs/<sweep id>/comparison.html over the items whose results are in ``runs_dir``; None
    when none is (a sweep run elsewhere). Like a run's report, it never fails the sweep."""
    from ..report.compare import Item, write_comparison

    items = []
    for row in table:
        run_dir = Path(runs_dir) / row["run_id"]
        label = " ".join([row["strategy"], ",".join(row["pairs"]), row["timerange"],
                          *(f"{k}={v}" for k, v in row["parameters"].items())])
        done = row["status"] == "COMPLETED" and (run_dir / "backtest-result.json").is_file()
        problem = "" if done else f"{row['status'] or 'not started'} {(row['error'] or {}).get('type') or ''}".strip()
        items.append(Item(row["run_id"], label, run_dir if done else None, problem))
    if not any(i.run_dir for i in items):
        return None
    try:
        return write_comparison(Path(runs_dir) / sweep_id, f"sweep {sweep_id}", items, metric)
    except Exception as exc:  # noqa: BLE001 - the comparison is a view of results already stored
        print(f"sweep {sweep_id}: could not write the comparison report: {exc}", file=sys.stderr)
        return None


def line(item: SweepItem, recorded: dict[str, Any], metric: str) -> str:
    value = (recorded.get("summary") or {}).get(metric)
    if recorded.get("status") is None:
        return f"{item.run_id} not started"
    shown = f"{metric}={value:.4f}" if isinstance(value, (int, float)) else (recorded.get("error_type") or "")
    params = " ".join(f"{k}={v}" for k, v in item.parameters.items())
    return f"{item.run_id} {recorded.get('status')} {shown} [{item.strategy} {','.join(item.pairs)} {item.timerange} {params}]"
