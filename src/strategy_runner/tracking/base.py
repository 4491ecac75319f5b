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

