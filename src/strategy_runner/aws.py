"""The one place boto3 clients are made: region, endpoint and retries from the settings.

Every client retries throttling, 5xx and connection errors with botocore's ``standard``
mode, so a transient AWS error never fails a run that could have finished. The endpoint
is AWS_ENDPOINT_URL (an emulator in tests); unset, boto3 uses the real AWS endpoints.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from .settings import Settings

RETRY_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 5},  # the first call + 4 retries
    connect_timeout=5,
    read_timeout=30,
)


def client(settings: Settings, service: str) -> Any:
    """A boto3 client for ``service`` (clients are thread-safe: the heartbeat shares them)."""
    session = boto3.session.Session(region_name=settings.aws_region)
    return session.client(
        service,
        endpoint_url=settings.aws_endpoint_url or None,
        config=RETRY_CONFIG.merge(Config(region_name=settings.aws_region)),
    )


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ("bucket", "some/prefix")."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
