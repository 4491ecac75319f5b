"""Settings: every accepted form, and every rejection names the variable and the value."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from strategy_runner.errors import ValidationError
from strategy_runner.settings import Settings, env_names, load_lenient, load_settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in env_names():
        monkeypatch.delenv(name, raising=False)


def test_zero_variables_is_a_valid_local_run():
    s = load_settings()
    assert re.match(r"^local-\d{8}T\d{6}-[0-9a-f]{6}$", s.run_id)
    assert s.pairs == () and s.config_name == "base.json"
    assert s.dynamodb_table is None and s.task_token is None


@pytest.mark.parametrize(
    "raw,expected",
    [
        ('["BTC/USDT:USDT"]', ("BTC/USDT:USDT",)),  # States.JsonToString($.symbols)
        ('["BTC/USDT","ETH/USDT"]', ("BTC/USDT", "ETH/USDT")),
        ("BTC/USDT, ETH/USDT", ("BTC/USDT", "ETH/USDT")),
        ("BTC/USDT:USDT", ("BTC/USDT:USDT",)),
        ("", ()),
    ],
)
def test_pairs_forms(monkeypatch, raw, expected):
    monkeypatch.setenv("PAIRS", raw)
    assert load_settings().pairs == expected


def test_futures_pairs_pick_the_futures_config(monkeypatch):
    monkeypatch.setenv("PAIRS", '["BTC/USDT:USDT"]')
    assert load_settings().config_name == "futures.json"


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("20240101-20240601", "20240101-20240601"),
        ("20240101-", "20240101-"),
        ("-20240601", "-20240601"),
        ("2024-01-01-2024-06-01", "20240101-20240601"),  # States.Format('{}-{}', start, end)
        ("2024-01-01-", "20240101-"),
    ],
)
def test_timerange_forms(monkeypatch, raw, expected):
    monkeypatch.setenv("TIMERANGE", raw)
    assert load_settings().timerange == expected


@pytest.mark.parametrize(
    "var,value,fragment",
    [
        ("PAIRS", '["BTC/USDT"', "not valid JSON"),
        ("PAIRS", "BTC-USDT", "not a pair like BTC/USDT"),
        ("PAIRS", '["BTC/USDT","BTC/USDT"]', "listed twice"),
        ("PAIRS", "BTC/USDT,ETH/USDT:USDT", "mixes spot pairs"),
        ("PAIRS", "[1, 2]", "pair strings only"),
        ("TIMERANGE", "20240601-20240101", "starts on or after its end"),
        ("TIMERANGE", "20240230-20240301", "does not exist"),
        ("TIMERANGE", "2024", "YYYYMMDD-YYYYMMDD"),
        ("TIMERANGE", "-", "YYYYMMDD-YYYYMMDD"),
        ("TIMEFRAME", "7m", "expected one of"),
        ("STRATEGY", "../strategies/EmaCrossSpot", "not a path"),
        ("STRATEGY", "/etc/passwd", "not a path"),
        ("RUN_ID", "a/b", "letters, digits"),
        ("TRADAI_RUN_ID", "a b", "letters, digits"),
        ("CONFIG_S3_PATH", "http://x/y.json", "s3://"),
        ("CONFIG", "../base.yaml", "expected a .json Freqtrade config"),
        ("HEARTBEAT_INTERVAL_SECONDS", "0", "greater than or equal to 1"),
        ("HEARTBEAT_INTERVAL_SECONDS", "0.2", "greater than or equal to 1"),
        ("RUN_ID", "run-1\n", "letters, digits"),
        ("AWS_ENDPOINT_URL_DYNAMODB", "localhost:4566", "http(s)://host[:port]"),
        ("RUN_ID", "a" * 3000, "letters, digits"),
        ("RUN_ID", "../etc", "letters, digits"),
        ("RUN_ID", "läuft", "letters, digits"),
        ("MEMORY_LIMIT_MB", "lots", "valid integer"),
        ("LOG_FORMAT", "xml", "'auto', 'json' or 'console'"),
    ],
)
def test_invalid_values_name_variable_value_and_expectation(monkeypatch, var, value, fragment):
    monkeypatch.setenv(var, value)
    with pytest.raises(ValidationError) as err:
        load_settings()
    message = str(err.value)
    shown = "RUN_ID" if var == "TRADAI_RUN_ID" else var
    assert f"{shown}={value!r}" in message
    assert fragment in message


def test_v8_aliases(monkeypatch):
    monkeypatch.setenv("TRADAI_RUN_ID", "bt-abc123")
    monkeypatch.setenv("TRADAI_EXPERIMENT", "exp-v8")
    s = load_settings()
    assert (s.run_id, s.experiment_name) == ("bt-abc123", "exp-v8")
    monkeypatch.setenv("RUN_ID", "new-name-wins")
    assert load_settings().run_id == "new-name-wins"


def test_settings_are_frozen():
    s = load_settings()
    with pytest.raises(Exception):
        s.run_id = "other"  # type: ignore[misc]


def test_lease_must_cover_a_few_heartbeats(monkeypatch):
    monkeypatch.setenv("HEARTBEAT_INTERVAL_SECONDS", "60")
    monkeypatch.setenv("LEASE_SECONDS", "120")
    with pytest.raises(ValidationError, match=r"LEASE_SECONDS=120 must be at least 3 x HEARTBEAT_INTERVAL_SECONDS=60"):
        load_settings()
    monkeypatch.setenv("LEASE_SECONDS", "180")
    assert load_settings().lease_seconds == 180


def test_worker_environment_holds_no_secrets(monkeypatch):
    from strategy_runner.settings import mlflow_client_environment, worker_environment

    for name in ("TASK_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "secret-" + name)
    env = worker_environment(load_settings())
    assert not [v for v in env.values() if v.startswith("secret-")]
    mlflow_env = mlflow_client_environment(load_settings())
    assert "TASK_TOKEN" not in mlflow_env and mlflow_env["AWS_SECRET_ACCESS_KEY"] == "secret-AWS_SECRET_ACCESS_KEY"


def test_lenient_keeps_valid_values_and_drops_invalid(monkeypatch):
    monkeypatch.setenv("RUN_ID", "keep-me")
    monkeypatch.setenv("PAIRS", "not a pair")
    s, bad = load_lenient()
    assert s.run_id == "keep-me" and s.pairs == () and bad == {"pairs"}


def test_every_field_is_documented():
    for name, info in Settings.model_fields.items():
        assert info.description, f"{name} has no description"
        assert info.validation_alias, f"{name} has no environment variable"
