"""The embedded default: results stay in RUNS_DIR/<RUN_ID>/."""

from __future__ import annotations

from pathlib import Path


class LocalArtifactStore:
    def publish(self, run_dir: Path, run_id: str) -> str:
        return Path(run_dir).resolve().as_uri()
