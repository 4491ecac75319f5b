"""The tracker protocol. Tracking is never allowed to fail or stall a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class Tracker(Protocol):
    def start(self) -> str | None:
        """Open the run's tracking record; return its id (written to the status item)."""

    def finish(self, status: str, summary: dict[str, Any] | None, run_dir: Path) -> str | None:
        """Log what exists and close the record as FINISHED, FAILED or KILLED.
        Returns a tracking error message, or None when all went well."""

    def close(self, mlflow_run_id: str, status: str, reason: str) -> str | None:
        """End a record a dead attempt left open (``reap``). Returns an error message or None."""

    def start_memory_mb(self) -> float:
        """RSS a tracking process holds beside the worker's start-up (the memory estimate's floor)."""


class NoTracker:
    """TRACKING=false: the run is not logged anywhere but its own results."""

    def start(self) -> str | None:
        return None

    def finish(self, status: str, summary: dict[str, Any] | None, run_dir: Path) -> str | None:
        return None

    def close(self, mlflow_run_id: str, status: str, reason: str) -> str | None:
        return None

    def start_memory_mb(self) -> float:
        return 0.0
