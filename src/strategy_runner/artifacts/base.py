"""The artifact store protocol and the manifest every results directory carries."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Protocol

MANIFEST = "manifest.json"
SUMMARY = "backtest-result.json"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def result_files(run_dir: Path) -> list[Path]:
    """The files that make up a run's results, summary first (the runbook reads it first)."""
    files = sorted(p for p in run_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
    files = [p for p in files if not any(part.startswith(".") for part in p.relative_to(run_dir).parts)]
    return sorted(files, key=lambda p: (p.name != SUMMARY, p.name == MANIFEST, str(p)))


def write_manifest(run_dir: Path) -> dict[str, Any]:
    """SHA-256 and size of every result file, written to manifest.json."""
    entries = {
        str(p.relative_to(run_dir)): {"sha256": sha256_file(p), "size": p.stat().st_size}
        for p in result_files(run_dir)
        if p.name != MANIFEST
    }
    manifest = {"files": entries}
    (run_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


class ArtifactStore(Protocol):
    def publish(self, run_dir: Path, run_id: str) -> str:
        """Store every result file durably; return the results URI. Raises ResultsUploadError."""
