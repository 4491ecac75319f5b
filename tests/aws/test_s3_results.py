"""S3ArtifactStore against the emulator: layout, order, checksums, multipart, failures."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest

from strategy_runner.artifacts.base import write_manifest
from strategy_runner.artifacts.s3 import S3ArtifactStore
from strategy_runner.errors import ResultsAccessError


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    d = tmp_path / "runs" / "run-7"
    (d / ".worker").mkdir(parents=True)
    (d / "backtest-result.json").write_text(json.dumps({"metrics": {"sharpe": 1.2}}))
    (d / "trades.csv").write_text("pair,profit\nBTC/USDT:USDT,0.1\n")
    (d / "run.log").write_text('{"event": "run started"}\n')
    (d / "backtest-result-2024.zip").write_bytes(os.urandom(6 * 1024 * 1024 + 123))  # multipart below
    (d / ".worker" / "outcome.json").write_text("{}")  # scratch: not a result
    write_manifest(d)
    return d


def _keys_in_order(client) -> list[str]:
    order: list[str] = []

    def record(params, **_):
        order.append(params["Key"])

    client.meta.events.register("before-parameter-build.s3.PutObject", record)
    client.meta.events.register("before-parameter-build.s3.CreateMultipartUpload", record)
    return order


def test_publish_uploads_every_result_with_its_sha256(aws, aws_name, run_dir):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=aws_name)
    order = _keys_in_order(s3)
    store = S3ArtifactStore(s3, aws_name, "backtests", multipart_threshold=5 * 1024 * 1024)
    (run_dir / "run.log").write_text('{"event": "run started"}\n{"event": "a late line"}\n')  # grew after the manifest

    uri = store.publish(run_dir, "run-7")

    assert uri == f"s3://{aws_name}/backtests/run-7/"
    names = ["backtest-result.json", "backtest-result-2024.zip", "run.log", "trades.csv", "manifest.json"]
    assert order == [f"backtests/run-7/{n}" for n in names]  # summary first, manifest last, no scratch
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket=aws_name)["Contents"]}
    assert listed == {f"backtests/run-7/{n}" for n in names}
    manifest = json.loads(s3.get_object(Bucket=aws_name, Key="backtests/run-7/manifest.json")["Body"].read())
    assert set(manifest["files"]) == set(names) - {"manifest.json"}
    for name, entry in manifest["files"].items():
        obj = s3.get_object(Bucket=aws_name, Key=f"backtests/run-7/{name}", ChecksumMode="ENABLED")
        body = obj["Body"].read()
        assert hashlib.sha256(body).hexdigest() == entry["sha256"] == obj["Metadata"]["sha256"], name
        assert len(body) == entry["size"] == (run_dir / name).stat().st_size
    small = s3.head_object(Bucket=aws_name, Key="backtests/run-7/trades.csv", ChecksumMode="ENABLED")
    assert base64.b64decode(small["ChecksumSHA256"]).hex() == manifest["files"]["trades.csv"]["sha256"]
    big = s3.head_object(Bucket=aws_name, Key="backtests/run-7/backtest-result-2024.zip")
    assert "-" in big["ETag"], "a file over the threshold goes as a multipart upload"
    assert json.loads((run_dir / "manifest.json").read_text()) == manifest  # local copy matches


def test_a_missing_bucket_names_the_upload_and_keeps_local_files(aws, aws_name, run_dir):
    before = sorted(p.name for p in run_dir.iterdir())
    store = S3ArtifactStore(aws.client("s3"), f"{aws_name}-missing")
    with pytest.raises(ResultsAccessError) as caught:  # permanent: a retry would meet the same wall
        store.publish(run_dir, "run-7")
    assert not caught.value.retryable
    assert f"s3://{aws_name}-missing/backtests/run-7/backtest-result.json" in str(caught.value)
    assert "NoSuchBucket" in str(caught.value)
    assert sorted(p.name for p in run_dir.iterdir()) == before
