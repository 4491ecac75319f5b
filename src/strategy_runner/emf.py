"""One CloudWatch Embedded Metric Format record per run, in the run's JSON logs.

awslogs ships every stderr line to CloudWatch Logs; a line carrying ``_aws`` becomes metrics
there (no PutMetricData call, no API cost). Namespace and dimension are the architecture's
(seed 003 §4: ``BacktestDuration`` in ``TradAI/Backtest`` by ``Strategy``); the alarms on
them are in deploy/cloudwatch/alarms.json.
"""

from __future__ import annotations

import time
from typing import Any

from . import logs

NAMESPACE = "TradAI/Backtest"
DIMENSION = "Strategy"
#: By strategy, and once without dimensions: an alarm reads one metric, not a sum over strategies.
DIMENSION_SETS = [[DIMENSION], []]
#: metric name -> unit (what deploy/cloudwatch/alarms.json may refer to).
METRICS = {
    "BacktestDuration": "Seconds",
    "BacktestSucceeded": "Count",
    "BacktestFailed": "Count",
    "PeakMemoryMB": "Megabytes",
}

log = logs.get_logger("strategy_runner.metrics")


def record(*, strategy: str, duration_s: float, status: str, error_type: str | None,
           peak_memory_mb: float | None) -> dict[str, Any]:
    """The EMF record of one run (also handy for tests)."""
    values: dict[str, Any] = {
        "BacktestDuration": round(duration_s, 3),
        "BacktestSucceeded": 1 if status == "COMPLETED" else 0,
        "BacktestFailed": 0 if status == "COMPLETED" else 1,
    }
    if peak_memory_mb is not None:
        values["PeakMemoryMB"] = peak_memory_mb
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": DIMENSION_SETS,
                "Metrics": [{"Name": name, "Unit": METRICS[name]} for name in values],
            }],
        },
        DIMENSION: strategy,
        **values,
        # Properties (not metrics): searchable in Logs Insights next to the numbers.
        "Outcome": status,
        "ErrorType": error_type or "",
    }


def emit(**kwargs: Any) -> None:
    """Log the run's EMF record (one JSON line)."""
    log.info("run metrics", **record(**kwargs))
