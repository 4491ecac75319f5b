"""The client factory: endpoint from AWS_ENDPOINT_URL, and transient errors retried."""

from __future__ import annotations

import pytest
from botocore.awsrequest import AWSResponse

from strategy_runner import aws as aws_clients
from strategy_runner.settings import load_settings
from strategy_runner.status.dynamodb import DynamoDBStatusStore, create_table


class _Headers(dict):
    def get_all(self, name, default=None):  # what botocore's response parser may ask for
        return [self[name]] if name in self else (default or [])


def _fail_first(client, operation: str, times: int, status: int = 503) -> list[int]:
    """Answer the first ``times`` calls of ``operation`` with an HTTP error, as a throttled
    or briefly unavailable service would; later calls go through to the endpoint."""
    calls: list[int] = []

    def before_send(request, **_):
        if request.headers.get("X-Amz-Target", b"").decode().endswith(operation):
            calls.append(1)
            if len(calls) <= times:
                return AWSResponse(request.url, status, _Headers({"Content-Type": "application/x-amz-json-1.0"}),
                                   _Raw(b'{"__type": "ServiceUnavailable", "message": "try again"}'))
        return None

    client.meta.events.register("before-send.dynamodb", before_send)
    return calls


class _Raw:
    def __init__(self, body: bytes):
        self._body = body

    def stream(self, **_):
        yield self._body

    def read(self, *_):
        return self._body


@pytest.fixture
def settings(aws, monkeypatch):
    for name, value in aws.env.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def test_clients_use_the_endpoint_and_standard_retries(settings, aws):
    client = aws_clients.client(settings, "dynamodb")
    assert client.meta.endpoint_url == aws.url
    assert client.meta.config.retries["mode"] == "standard"
    assert client.meta.config.retries["total_max_attempts"] == 4  # the status table: bounded (aws.py)
    assert aws_clients.client(settings, "s3").meta.config.retries["total_max_attempts"] == 5
    assert client.meta.region_name == settings.aws_region


def test_per_service_endpoint_variables_win(aws, monkeypatch):
    """boto3's convention: AWS_ENDPOINT_URL_<SERVICE> over AWS_ENDPOINT_URL."""
    for name, value in aws.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SFN", "http://127.0.0.1:8")
    settings = load_settings()
    assert aws_clients.client(settings, "s3").meta.endpoint_url == "http://127.0.0.1:9"
    assert aws_clients.client(settings, "stepfunctions").meta.endpoint_url == "http://127.0.0.1:8"
    assert aws_clients.client(settings, "dynamodb").meta.endpoint_url == aws.url


def test_transient_errors_are_retried_not_fatal(settings, aws_name):
    client = aws_clients.client(settings, "dynamodb")
    create_table(client, aws_name)
    store = DynamoDBStatusStore(client, aws_name)
    calls = _fail_first(client, "UpdateItem", times=3)
    claim = store.claim("r1", owner="me", lease_seconds=600, fields={"trace_id": "t"})
    assert claim.item["status"] == "RUNNING" and len(calls) == 4


def test_errors_past_the_retry_budget_surface(settings, aws_name):
    client = aws_clients.client(settings, "dynamodb")
    create_table(client, aws_name)
    calls = _fail_first(client, "GetItem", times=10)
    with pytest.raises(Exception, match="ServiceUnavailable|503"):
        DynamoDBStatusStore(client, aws_name).get("r1")
    assert len(calls) == 4
