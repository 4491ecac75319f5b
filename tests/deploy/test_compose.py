"""docker-compose.yml against the compose specification and the runner's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import checks
from .test_dockerfile import variant


def test_compose_file_is_valid_and_matches_the_settings() -> None:
    assert checks.compose_problems() == []


@pytest.mark.parametrize(("old", "new", "expected"), [
    # Against the compose specification.
    ("  init: true\n", "  init: [true]\n", "compose spec"),
    ("    depends_on:\n      aws-init:", "    depend_on:\n      aws-init:", "compose spec"),
    # Against the settings: unknown variable, invalid value.
    ("      EXPERIMENT_NAME: local\n", "      EXPERIMENT: local\n", "EXPERIMENT is not read by the runner"),
    ("      LOG_FORMAT: auto\n    volumes:\n      - runs:/app/runs",
     "      LOG_FORMAT: colourful\n    volumes:\n      - runs:/app/runs", "LOG_FORMAT='colourful'"),
    # The stack itself.
    ("motoserver/moto:5.2.5", "motoserver/moto", "not pinned"),
    ("127.0.0.1:${MLFLOW_UI_PORT:-5000}:5000", "${MLFLOW_UI_PORT:-5000}:5000", "all interfaces"),
    ("  mem_limit: 2g\n", "  mem_limit: 4g\n", "mem_limit"),
    ("condition: service_completed_successfully", "condition: service_started", "aws-init"),
    ("AWS_ENDPOINT_URL: http://aws:5000", "AWS_ENDPOINT_URL: http://localstack:4566", "names no compose service"),
    ('    profiles: ["embedded"]\n', "", "profile"),
])
def test_compose_check_fails_a_broken_compose_file(tmp_path: Path, old: str, new: str, expected: str) -> None:
    problems = checks.compose_problems(variant(tmp_path, checks.COMPOSE, old, new))
    assert any(expected in p for p in problems), problems


def test_a_service_waiting_for_health_needs_a_healthcheck(tmp_path: Path) -> None:
    text = checks.COMPOSE.read_text()
    start = text.index("    healthcheck:\n", text.index("\n  mlflow:\n"))
    end = text.index("\nvolumes:")
    target = tmp_path / "docker-compose.yml"
    target.write_text(text[:start] + text[end:])
    problems = checks.compose_problems(target)
    assert any("mlflow has no healthcheck" in p for p in problems), problems


def test_the_embedded_service_must_not_talk_to_the_stack(tmp_path: Path) -> None:
    target = variant(tmp_path, checks.COMPOSE, "MLFLOW_TRACKING_URI: sqlite:////app/runs/mlflow.db",
                     "MLFLOW_TRACKING_URI: http://mlflow:5000")
    problems = checks.compose_problems(target)
    assert any("strategy-embedded must run with no stack" in p for p in problems), problems
