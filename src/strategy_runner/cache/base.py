"""The result cache protocol: content-addressed entries of a COMPLETED run's result files."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from ..artifacts.base import MANIFEST, result_files

ENTRY = "cache-entry.json"
#: Result files that belong to one run, not to its result: never cached.
PER_RUN = {"run.log", MANIFEST, "report.html"}


def cacheable_files(run_dir: Path) -> list[Path]:
    return [p for p in result_files(run_dir) if p.name not in PER_RUN]


class ResultCache(Protocol):
    def fetch(self, key: str, dest: Path) -> dict[str, Any] | None:
        """Copy the entry's files into ``dest`` and return its metadata; None on a miss."""

    def store(self, key: str, run_dir: Path, meta: dict[str, Any]) -> str:
        """Keep ``run_dir``'s result files under ``key``; return where (for the log)."""
