"""Local result cache: RUNS_DIR/.cache/<key>/ holds copies of the result files and an entry."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..artifacts.base import sha256_file
from ..logs import get_logger
from .base import ENTRY, cacheable_files

log = get_logger(__name__)


class LocalResultCache:
    def __init__(self, runs_dir: Path):
        self.root = Path(runs_dir) / ".cache"

    def fetch(self, key: str, dest: Path) -> dict[str, Any] | None:
        entry_dir = self.root / key
        try:
            meta = json.loads((entry_dir / ENTRY).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        files: dict[str, str] = meta.get("files") or {}
        # Verify before copying: a damaged entry is a miss, never a wrong result.
        for name, digest in files.items():
            path = entry_dir / name
            if not path.is_file() or sha256_file(path) != digest:
                log.warning("cache entry damaged; ignoring it", key=key, file=name)
                return None
        dest.mkdir(parents=True, exist_ok=True)
        for name in files:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(entry_dir / name, dest / name)
        return meta

    def store(self, key: str, run_dir: Path, meta: dict[str, Any]) -> str:
        final = self.root / key
        if (final / ENTRY).exists():
            return str(final)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key[:12]}-", dir=self.root))
        try:
            files = {}
            for path in cacheable_files(run_dir):
                name = str(path.relative_to(run_dir))
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, tmp / name)
                files[name] = sha256_file(tmp / name)
            (tmp / ENTRY).write_text(json.dumps({**meta, "key": key, "files": files}, indent=2, sort_keys=True))
            try:
                os.rename(tmp, final)  # atomic: a concurrent run that got there first wins
            except OSError:
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return str(final)
