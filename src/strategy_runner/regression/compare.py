"""Compare one run with its baseline: which metrics moved beyond tolerance, and why.

"Why" comes from the identities both sides record (data fingerprint, strategy source hash,
effective-config hash, Freqtrade and runner versions, image): changed data reads
differently from changed code or a new engine, and unchanged inputs with moved metrics
mean the run is not reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .suite import Case, Suite

PASS, FAIL, ERROR, MISSING, UPDATED = "PASS", "FAIL", "ERROR", "NO BASELINE", "UPDATED"
PER_PAIR_METRICS = ("trades", "profit_total_abs")


def metrics_of(summary: dict[str, Any]) -> dict[str, float]:
    """Headline metrics plus a few per pair (``pair:BTC/USDT:trades``), as floats."""
    out = {k: float(v) for k, v in (summary.get("metrics") or {}).items()}
    for row in summary.get("per_pair") or []:
        for k in PER_PAIR_METRICS:
            if k in row:
                out[f"pair:{row['pair']}:{k}"] = float(row[k])
    return out


@dataclass
class MetricDiff:
    metric: str
    baseline: float | None
    current: float | None
    tolerance: str
    ok: bool

    @property
    def delta(self) -> float | None:
        if self.baseline is None or self.current is None:
            return None
        return self.current - self.baseline

    @property
    def rel(self) -> float | None:
        d = self.delta
        if d is None or not self.baseline:
            return None
        return d / abs(self.baseline)


@dataclass
class CaseResult:
    case: Case
    status: str
    run_id: str | None = None
    results_dir: str | None = None
    seconds: float = 0.0
    cache_hit: bool | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    diffs: list[MetricDiff] = field(default_factory=list)  # every compared metric
    why: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def moved(self) -> list[MetricDiff]:
        return [d for d in self.diffs if not d.ok]

    @property
    def ok(self) -> bool:
        return self.status in (PASS, UPDATED)


def explain(baseline_identity: dict[str, Any], identity: dict[str, Any]) -> list[str]:
    """What changed between the baseline's inputs and this run's, in words."""
    reasons = []
    if baseline_identity.get("data_fingerprint") != identity.get("data_fingerprint"):
        old, new = baseline_identity.get("data_files") or {}, identity.get("data_files") or {}
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        reasons.append("data changed" + (f": {', '.join(changed)}" if changed else ""))
    if baseline_identity.get("strategy_hash") != identity.get("strategy_hash"):
        reasons.append(f"strategy code changed (source {_short(baseline_identity.get('strategy_hash'))} → "
                       f"{_short(identity.get('strategy_hash'))})")
    if baseline_identity.get("config_hash") != identity.get("config_hash"):
        reasons.append(f"effective config changed ({_short(baseline_identity.get('config_hash'))} → "
                       f"{_short(identity.get('config_hash'))})")
    for key, what in (("freqtrade_version", "engine changed: freqtrade"), ("runner_version", "runner changed"),
                      ("image", "image changed")):
        if baseline_identity.get(key) != identity.get(key):
            reasons.append(f"{what} {baseline_identity.get(key)} → {identity.get(key)}")
    return reasons


def _short(digest: Any) -> str:
    return str(digest)[:12] if digest else "none"


def compare(suite: Suite, case: Case, baseline: dict[str, Any], summary: dict[str, Any]) -> tuple[list[MetricDiff], list[str]]:
    base_metrics = baseline.get("metrics") or {}
    current = metrics_of(summary)
    diffs = []
    for metric in sorted(base_metrics, key=_metric_order):
        b = _num(base_metrics[metric])
        c = current.get(metric)
        tol = suite.tolerance(case, metric)
        ok = c is not None and b is not None and tol.allows(b, c)
        diffs.append(MetricDiff(metric, b, c, tol.describe(), ok))
    for metric in sorted(set(current) - set(base_metrics), key=_metric_order):
        if metric.startswith("pair:"):  # a pair that traded now and not before
            diffs.append(MetricDiff(metric, None, current[metric], suite.tolerance(case, metric).describe(), False))
    why = explain(baseline.get("identity") or {}, summary.get("identity") or {})
    if baseline.get("case") and baseline["case"] != case.definition():
        why.insert(0, "the case definition changed since the baseline was recorded")
    if any(not d.ok for d in diffs) and not why:
        why.append("no input changed: same data, code, config and engine gave different numbers "
                   "(the run is not reproducible)")
    return diffs, why


def _num(v: Any) -> float | None:
    try:
        return float(v) if v is not None else math.nan
    except (TypeError, ValueError):
        return None


def _metric_order(metric: str) -> tuple[int, str]:
    return (metric.startswith("pair:"), metric)
