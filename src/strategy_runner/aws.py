"""The one place boto3 clients are made: region, endpoint and retries from the settings.

Every client retries throttling, 5xx and connection errors with botocore's ``standard``
mode, so a transient AWS error never fails a run that could have finished. The endpoint
is the service's own variable (AWS_ENDPOINT_URL_DYNAMODB, _S3, _SFN), else
AWS_ENDPOINT_URL (an emulator in tests); unset, boto3 uses the real AWS endpoints.

The status table gets shorter timeouts than the rest: its calls are small and fast, and a
store that does not answer must fail the run inside a bounded time (seconds, not minutes).
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .settings import Settings

RETRY_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 5},  # the first call + 4 retries
    connect_timeout=5,
    read_timeout=30,
)
#: DynamoDB items are small: an answer takes milliseconds. 4 attempts x 5 s stay near 25 s.
STATUS_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 4},
    connect_timeout=3,
    read_timeout=5,
)
_CONFIGS = {"dynamodb": STATUS_CONFIG, "ecs": STATUS_CONFIG}  # ecs: the claim asks if an owner stopped

#: Error codes that mean "this will not work on a retry either".
PERMANENT_CODES = frozenset({
    "ResourceNotFoundException", "ValidationException", "AccessDeniedException", "AccessDenied",
    "UnrecognizedClientException", "InvalidSignatureException", "NoSuchBucket", "AllAccessDisabled",
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "ItemCollectionSizeLimitExceededException",
    "SerializationException", "InvalidBucketName", "PermanentRedirect", "AuthorizationHeaderMalformed",
})


def client(settings: Settings, service: str) -> Any:
    """A boto3 client for ``service`` (clients are thread-safe: the heartbeat shares them)."""
    session = boto3.session.Session(region_name=settings.aws_region)
    return session.client(
        service,
        endpoint_url=settings.endpoint_url(service),
        config=_CONFIGS.get(service, RETRY_CONFIG).merge(Config(region_name=settings.aws_region)),
    )


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ("bucket", "some/prefix")."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def is_permanent(exc: BaseException) -> bool:
    """A botocore error a retry cannot fix (missing resource, denied, invalid request).

    Connection errors, timeouts, throttling and 5xx are transient; so is anything unknown.
    """
    for cause in _chain(exc):
        if isinstance(cause, ClientError):
            code = error_code(cause)
            status = int(cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            return code in PERMANENT_CODES or (status in (400, 403, 404) and "Throttl" not in code)
        if isinstance(cause, BotoCoreError):
            # NoRegionError, ParamValidationError, NoCredentialsError: configuration, not weather.
            return not _is_transport(cause)
    return False


def _is_transport(exc: BotoCoreError) -> bool:
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    return isinstance(exc, (BotoConnectionError, HTTPClientError))


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return seen


def describe(exc: BaseException) -> str:
    """One line for an AWS error: its class and message (no traceback)."""
    return f"{type(exc).__name__}: {exc}"
