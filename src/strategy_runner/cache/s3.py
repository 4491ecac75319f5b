"""S3 result cache: s3://RESULTS_BUCKET/result-cache/<key>/ holds the files, entry last.

The entry (cache-entry.json, with each file's SHA-256) is written after the files, so an
entry that exists names a complete set; files are verified after download, and a partial
or damaged set is a miss that leaves nothing behind in the run directory.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..aws import error_code
from .base import ENTRY, cacheable_files

PREFIX = "result-cache"
_MISSING = {"NoSuchKey", "404", "NotFound"}


class S3ResultCache:
    def __init__(self, client: Any, bucket: str, prefix: str = PREFIX):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def _key(self, key: str, name: str) -> str:
        return f"{self.prefix}/{key}/{name}"

    def fetch(self, key: str, dest: Path) -> dict[str, Any] | None:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key, ENTRY))["Body"].read()
        except Exception as exc:
            if error_code(exc) in _MISSING:
                return None
            raise
        meta = json.loads(body)
        files: dict[str, str] = meta.get("files") or {}
        dest.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".cache-fetch-", dir=dest))
        try:
            for name, digest in files.items():
                data = self.client.get_object(Bucket=self.bucket, Key=self._key(key, name))["Body"].read()
                if hashlib.sha256(data).hexdigest() != digest:
                    return None
                (staging / name).parent.mkdir(parents=True, exist_ok=True)
                (staging / name).write_bytes(data)
            for name in files:
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                (staging / name).replace(dest / name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return meta

    def store(self, key: str, run_dir: Path, meta: dict[str, Any]) -> str:
        uri = f"s3://{self.bucket}/{self._key(key, '')}"
        files = {}
        for path in cacheable_files(run_dir):
            name = str(path.relative_to(run_dir))
            data = path.read_bytes()
            files[name] = hashlib.sha256(data).hexdigest()
            self.client.put_object(Bucket=self.bucket, Key=self._key(key, name), Body=data)
        entry = json.dumps({**meta, "key": key, "files": files}, indent=2, sort_keys=True).encode()
        self.client.put_object(Bucket=self.bucket, Key=self._key(key, ENTRY), Body=entry,
                               ContentType="application/json")
        return uri


class TieredResultCache:
    """Local first (cheap), then the shared store; a shared hit is kept locally too."""

    def __init__(self, local: Any, shared: Any):
        self.local = local
        self.shared = shared

    def fetch(self, key: str, dest: Path) -> dict[str, Any] | None:
        meta = self.local.fetch(key, dest)
        if meta is not None:
            return meta
        meta = self.shared.fetch(key, dest)
        if meta is not None:
            self.local.store(key, dest, {k: v for k, v in meta.items() if k not in ("files", "key")})
        return meta

    def store(self, key: str, run_dir: Path, meta: dict[str, Any]) -> str:
        where = self.local.store(key, run_dir, meta)
        return f"{where} and {self.shared.store(key, run_dir, meta)}"
