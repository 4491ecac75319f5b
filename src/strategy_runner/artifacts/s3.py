"""Results to S3: s3://$RESULTS_BUCKET/<RESULTS_PREFIX>/<RUN_ID>/<file> (runbook 001).

``backtest-result.json`` goes first and ``manifest.json`` last, so a reader who finds the
manifest finds everything it lists. Each object carries its SHA-256 twice: S3's own
checksum (``ChecksumAlgorithm=SHA256``, verified by S3 on receipt; for multipart uploads
it is a checksum of part checksums) and the whole-file hex digest in ``x-amz-meta-sha256``,
which is what manifest.json lists. Local files are never deleted.
"""

from __future__ import annotations

import hashlib
import io
import json
import mimetypes
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig

from ..aws import error_code, is_permanent
from ..errors import DiskFullError, ResultsAccessError, ResultsUploadError
from .base import MANIFEST, result_files, sha256_file

MULTIPART_THRESHOLD = 16 * 1024 * 1024


class S3ArtifactStore:
    def __init__(self, client: Any, bucket: str, prefix: str = "backtests",
                 multipart_threshold: int = MULTIPART_THRESHOLD):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.transfer = TransferConfig(multipart_threshold=multipart_threshold,
                                       multipart_chunksize=max(multipart_threshold, 5 * 1024 * 1024))

    def key(self, run_id: str, relpath: str) -> str:
        return "/".join(p for p in (self.prefix, run_id, relpath) if p)

    def publish(self, run_dir: Path, run_id: str) -> str:
        run_dir = Path(run_dir)
        manifest_path = run_dir / MANIFEST
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"files": {}}
        for path in result_files(run_dir):
            relpath = str(path.relative_to(run_dir))
            if path.name == MANIFEST:
                continue
            digest, size = self._upload(path, self.key(run_id, relpath))
            # run.log may have grown since the manifest was written: list what was uploaded.
            manifest["files"][relpath] = {"sha256": digest, "size": size}
        body = json.dumps(manifest, indent=2, sort_keys=True).encode()
        manifest_path.write_bytes(body)
        self._upload(manifest_path, self.key(run_id, MANIFEST), data=body)
        return f"s3://{self.bucket}/{self.key(run_id, '')}/"

    def _upload(self, path: Path, key: str, data: bytes | None = None) -> tuple[str, int]:
        """Upload one file; small files from one read, so the digest is of the bytes sent."""
        size = path.stat().st_size if data is None else len(data)
        if data is None and size < self.transfer.multipart_threshold:
            data = path.read_bytes()
            size = len(data)
        digest = hashlib.sha256(data).hexdigest() if data is not None else sha256_file(path)
        extra = {
            "ChecksumAlgorithm": "SHA256",
            "Metadata": {"sha256": digest},
            "ContentType": mimetypes.guess_type(path.name)[0] or "application/octet-stream",
        }
        try:
            if data is not None:
                self.client.upload_fileobj(io.BytesIO(data), self.bucket, key, ExtraArgs=extra, Config=self.transfer)
            else:
                self.client.upload_file(str(path), self.bucket, key, ExtraArgs=extra, Config=self.transfer)
        except OSError as exc:
            raise _local_error(exc, path) from exc
        except Exception as exc:  # noqa: BLE001 - botocore already retried transient errors
            if is_permanent(exc):  # a missing bucket or a denial: a retry meets the same wall
                raise ResultsAccessError(
                    f"upload of {path} to s3://{self.bucket}/{key} was refused ({error_code(exc) or type(exc).__name__}: "
                    f"{exc}): check RESULTS_BUCKET exists and the task role may write to it; the local results are "
                    f"kept in {path.parent}"
                ) from exc
            raise ResultsUploadError(
                f"upload of {path} to s3://{self.bucket}/{key} failed after retries: {exc}; "
                f"the local results are kept in {path.parent}"
            ) from exc
        return digest, size



def _local_error(exc: OSError, path: Path) -> Exception:
    if exc.errno == 28:
        return DiskFullError(f"no space left on the disk holding {path} (ENOSPC) while uploading it")
    return ResultsUploadError(f"reading {path} for upload failed: {exc}")
