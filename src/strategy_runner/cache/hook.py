"""What the supervisor does around the worker: reuse a cached result, or keep a new one.

    reuse()          before the worker: key the inputs (the files read as an earlier run with
                     these inputs recorded them); on a hit copy the result in, skip the worker
    note_computed()  after a successful worker: key the result by the files it read; mark the summary
    store()          after COMPLETED: keep the result under its key, and the files it read

Every failure here is logged and swallowed: a cache must never fail a run.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..artifacts.base import SUMMARY
from ..logs import get_logger
from ..settings import Settings
from .base import ResultCache
from .key import NotCacheable, cache_key, file_set_key, identity_mismatch, run_inputs
from .local import LocalResultCache

log = get_logger(__name__)

OVERLAY_PATH = Path(".worker") / "config-overlay.json"  # where prepare() leaves an S3 overlay


def build_cache(settings: Settings) -> ResultCache:
    """RUNS_DIR/.cache/ always; with RESULTS_BUCKET also s3://RESULTS_BUCKET/result-cache/."""
    local = LocalResultCache(settings.runs_dir)
    if not settings.results_bucket:
        return local
    from .. import aws
    from .s3 import S3ResultCache, TieredResultCache

    return TieredResultCache(local, S3ResultCache(aws.client(settings, "s3"), settings.results_bucket))


class CacheHook:
    def __init__(self, settings: Settings, cache: ResultCache | None = None):
        self.settings = settings
        self.run_dir = settings.run_dir
        self._cache = cache  # built on first use: a cache that cannot be reached must not stop the run
        self.inputs: dict[str, Any] | None = None
        self.key: str | None = None
        self.hit = False
        self.source_run_id: str | None = None

    @property
    def cache(self) -> ResultCache:
        if self._cache is None:
            self._cache = build_cache(self.settings)
        return self._cache

    @property
    def fields(self) -> dict[str, Any]:
        """For the status item."""
        if self.key is None:
            return {}
        out: dict[str, Any] = {"cache_hit": self.hit, "cache_key": self.key}
        if self.source_run_id:
            out["cache_source_run_id"] = self.source_run_id
        return out

    def reuse(self) -> bool:
        """True when the result was copied from the cache (the worker must not run)."""
        if not self.settings.result_cache:
            log.info("result cache off (RESULT_CACHE=false)")
            return False
        overlay = self.run_dir / OVERLAY_PATH
        try:
            self.inputs = run_inputs(self.settings, overlay)
            files = self._recall_file_set(file_set_key(self.inputs))
            if files is None:
                log.info("no cached result: no earlier run with these inputs recorded the files it reads")
                return False
            self.inputs = run_inputs(self.settings, overlay, data_files=files)
            self.key = cache_key(self.inputs)
        except NotCacheable as exc:
            log.info("result not cacheable", reason=str(exc))
            return False
        except Exception as exc:  # noqa: BLE001 - the worker reports real input errors better
            log.warning("could not compute the cache key; running without the cache", error=str(exc))
            return False
        try:
            meta = self.cache.fetch(self.key, self.run_dir)
        except Exception as exc:  # noqa: BLE001
            log.warning("cache lookup failed; running the backtest", key=self.key, error=str(exc))
            meta = None
        if meta is None:
            log.info("no cached result; running the backtest", cache_key=self.key)
            return False
        self.hit = True
        self.source_run_id = meta.get("source_run_id")
        self._rewrite_summary()
        self._write_report()
        log.info("result reused from the cache; backtest skipped", cache_key=self.key,
                 source_run_id=self.source_run_id, cached_at=meta.get("created_at"))
        return True

    def note_computed(self) -> None:
        """After a successful worker: key the result by the files the worker read."""
        if self.inputs is None:
            return
        summary = json.loads((self.run_dir / SUMMARY).read_text())
        identity = summary.get("identity") or {}
        try:
            # Fingerprinted again now: a file changed during the run disagrees with the identity.
            inputs = run_inputs(self.settings, self.run_dir / OVERLAY_PATH,
                                data_files=sorted(identity.get("data_files") or {}))
        except NotCacheable as exc:
            log.info("result not cacheable", reason=str(exc))
            return
        mismatch = identity_mismatch(inputs, identity)
        if mismatch:
            # The inputs changed while the run ran (or the two computations disagree):
            # caching it under the key would hand out a result for other inputs.
            log.warning("result not cached: its identity differs from the cache key's inputs", fields=mismatch)
            self.key = None
            return
        self.inputs = inputs
        self.key = cache_key(inputs)
        self._rewrite_summary()

    def store(self) -> None:
        """After COMPLETED: keep the result for identical runs (never a cached copy again)."""
        if self.hit or self.key is None or self.inputs is None:
            return
        where = self.cache.store(self.key, self.run_dir, {
            "source_run_id": self.settings.run_id,
            "created_at": datetime.now(UTC).isoformat(),
            "inputs": self.inputs,
        })
        self._remember_file_set(file_set_key(self.inputs), sorted(self.inputs["data_files"]))
        log.info("result stored in the cache", cache_key=self.key, location=where)

    def _recall_file_set(self, key: str) -> list[str] | None:
        with tempfile.TemporaryDirectory(prefix="file-set-") as scratch:
            meta = self.cache.fetch(key, Path(scratch))
        return list(meta["data_files"]) if meta and isinstance(meta.get("data_files"), list) else None

    def _remember_file_set(self, key: str, files: list[str]) -> None:
        """An entry with no result files: the files a run with these inputs reads."""
        with tempfile.TemporaryDirectory(prefix="file-set-") as empty:
            self.cache.store(key, Path(empty), {"data_files": files, "source_run_id": self.settings.run_id})

    def _rewrite_summary(self) -> None:
        path = self.run_dir / SUMMARY
        summary = json.loads(path.read_text())
        if self.hit:
            summary["cached_from"] = {"run_id": summary.get("run_id"), "trace_id": summary.get("trace_id")}
            summary.update(run_id=self.settings.run_id, trace_id=self.settings.trace_id)
        summary["cache"] = {"hit": self.hit, "key": self.key, "source_run_id": self.source_run_id}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(summary, indent=2, sort_keys=True, default=str))
        tmp.replace(path)

    def _write_report(self) -> None:
        try:
            from ..report.html import write_report

            write_report(self.run_dir)
        except Exception as exc:  # noqa: BLE001 - the report is a view, not the result
            log.warning("could not write report.html", error=str(exc))
