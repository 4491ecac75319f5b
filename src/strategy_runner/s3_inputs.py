"""What a Fargate task fetches from S3 before the worker starts (Supervisor.prepare).

- CONFIG_S3_PATH: a Freqtrade config overlay (v8 workflow), written to
  runs/<RUN_ID>/.worker/config-overlay.json, which the worker merges over the base config.
- DATA_S3_PATH: candles in Freqtrade's layout (``<prefix>/BTC_USDT-1h.feather``,
  ``<prefix>/futures/BTC_USDT_USDT-1h-futures.feather``, ``-1h-mark``, ``-1h-funding_rate``).
  Only the files this run needs are downloaded into DATA_DIR, each verified (size, the
  SHA-256 in ``x-amz-meta-sha256`` or S3's full-object checksum when present, readable in
  the config's dataformat_ohlcv). Whatever is missing is one DataError (DataStaleError) naming every pair,
  timeframe and candle type.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from . import logs
from .artifacts.base import sha256_file
from .engine.config import effective_config, planned_timeframe, read_json
from .engine.data import CandleFile, needed_files
from .errors import ConfigurationError, DataError
from .settings import Settings
from .worker import MARKETS_COPY, OVERLAY, WORK

log = logs.get_logger("strategy_runner.s3_inputs")

_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})


def needs_fetch(settings: Settings) -> bool:
    return bool(settings.config_s3_path or settings.data_s3_path or (settings.markets_path or "").startswith("s3://"))


def prepare_inputs(settings: Settings, s3: Any) -> None:
    """Fetch the config overlay, the markets snapshot and the candles this run needs (each only
    when configured)."""
    from .aws import split_s3_uri  # boto3: only a run that reads S3 pays its import

    if not needs_fetch(settings):
        return
    if (settings.markets_path or "").startswith("s3://"):
        fetch_markets(s3, settings.markets_path, settings.run_dir / WORK / MARKETS_COPY, required=True)
    overlay = None
    if settings.config_s3_path:
        overlay = fetch_config_overlay(s3, settings.config_s3_path, settings.run_dir / WORK / OVERLAY)
    base = read_json(settings.config_path, "config")
    config = effective_config(base, overlay, strategy=settings.strategy, timeframe=settings.timeframe,
                              timerange=settings.timerange, pairs=settings.pairs)
    if settings.data_s3_path:
        timeframe = planned_timeframe(config, settings.strategies_dir, settings.strategy)
        files = needed_files(list(config["exchange"]["pair_whitelist"]), timeframe,
                             str(config.get("trading_mode", "spot")), config.get("dataformat_ohlcv", "feather"))
        fetch_data(s3, settings.data_s3_path, settings.data_dir, files)
        # A snapshot beside the candles travels with them (markets/: DATA_DIR/markets/<exchange>.json).
        exchange = str(config["exchange"]["name"]).lower()
        bucket, prefix = split_s3_uri(settings.data_s3_path)
        key = "/".join(part for part in (prefix.strip("/"), "markets", f"{exchange}.json") if part)
        fetch_markets(s3, f"s3://{bucket}/{key}", Path(settings.data_dir) / "markets" / f"{exchange}.json",
                      required=False)


def fetch_markets(s3: Any, uri: str, dest: Path, *, required: bool) -> None:
    """A markets snapshot object to ``dest`` (validated when the worker loads it)."""
    from .aws import error_code, split_s3_uri  # boto3: only a run that reads S3 pays its import

    bucket, key = split_s3_uri(uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        if error_code(exc) in _NOT_FOUND and not required:
            return
        if error_code(exc) in _NOT_FOUND | {"NoSuchBucket"}:
            raise ConfigurationError(f"MARKETS_PATH={uri!r}: no such object ({error_code(exc)})") from None
        raise
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(body)
    log.info("markets snapshot fetched", source=uri, bytes=len(body))


def fetch_config_overlay(s3: Any, uri: str, dest: Path) -> dict[str, Any]:
    from .aws import error_code, split_s3_uri  # boto3: only a run that reads S3 pays its import

    bucket, key = split_s3_uri(uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        if error_code(exc) in _NOT_FOUND | {"NoSuchBucket"}:
            raise ConfigurationError(f"CONFIG_S3_PATH={uri!r}: no such object ({error_code(exc)})") from None
        raise
    try:
        overlay = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"CONFIG_S3_PATH={uri!r} is not valid JSON: {exc}") from None
    if not isinstance(overlay, dict):
        raise ConfigurationError(f"CONFIG_S3_PATH={uri!r} must hold a JSON object, not {type(overlay).__name__}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(overlay, indent=2, sort_keys=True))
    log.info("config overlay fetched", source=uri, keys=sorted(overlay))
    return overlay


def fetch_data(s3: Any, uri: str, data_dir: Path, files: list[CandleFile]) -> None:
    from .aws import error_code, split_s3_uri  # boto3: only a run that reads S3 pays its import

    bucket, prefix = split_s3_uri(uri)
    prefix = prefix.strip("/")
    missing, bad = [], []
    for f in files:
        key = f"{prefix}/{f.relpath}" if prefix else f.relpath
        where = f"s3://{bucket}/{key}"
        try:
            head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        except Exception as exc:
            code = error_code(exc)
            if code in _NOT_FOUND:
                missing.append(f"{f.pair} {f.timeframe} {f.candle_type} ({where})")
                continue
            if code == "NoSuchBucket":
                raise DataError(f"DATA_S3_PATH={uri!r}: bucket {bucket} does not exist") from None
            raise
        try:
            _download(s3, bucket, key, Path(data_dir) / f.relpath, head)
        except DataError as exc:
            bad.append(f"{f.pair} {f.timeframe} {f.candle_type} ({where}): {exc}")
    problems = []
    if missing:
        problems.append("missing on S3: " + "; ".join(missing))
    if bad:
        problems.append("unusable: " + "; ".join(bad))
    if problems:
        raise DataError(f"data for the run is not available under DATA_S3_PATH={uri}: " + " | ".join(problems))
    log.info("data fetched", source=uri, files=[f.relpath for f in files])


def _expected_sha256(head: dict[str, Any]) -> str | None:
    """Hex SHA-256 of the whole object: our metadata, else S3's full-object checksum."""
    meta = (head.get("Metadata") or {}).get("sha256")
    if meta:
        return meta.lower()
    checksum = head.get("ChecksumSHA256")
    if checksum and "-" not in checksum and head.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT":
        return base64.b64decode(checksum).hex()
    return None


def _download(s3: Any, bucket: str, key: str, dest: Path, head: dict[str, Any]) -> None:
    size, expected = int(head["ContentLength"]), _expected_sha256(head)
    if expected and dest.is_file() and dest.stat().st_size == size and sha256_file(dest) == expected:
        return  # already here from an earlier attempt
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    s3.download_file(bucket, key, str(tmp))
    try:
        if tmp.stat().st_size != size:
            raise DataError(f"downloaded {tmp.stat().st_size} bytes, S3 says {size}")
        if expected and sha256_file(tmp) != expected:
            raise DataError(f"SHA-256 {sha256_file(tmp)} does not match {expected}")
        _readable(tmp, dest.name)
    except DataError:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, dest)


def _readable(path: Path, name: str) -> None:
    """``path`` (a download in progress) holds candles in the format its final ``name`` says."""
    from .datacheck.candles import read_candle_file

    try:
        rows = len(read_candle_file(path, columns=["date"], name=name))
    except Exception as exc:  # noqa: BLE001 - any reader error means unusable data
        raise DataError(f"not a readable candle file with a date column ({exc})") from None
    if rows == 0:
        raise DataError("holds no candles")

