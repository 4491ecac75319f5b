"""The Dockerfile, its build context and its dependency lock, checked without a Docker engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import checks


def variant(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    text = source.read_text()
    assert old in text, f"{old!r} not in {source.name}: update the broken variant"
    target = tmp_path / source.name
    target.write_text(text.replace(old, new))
    return target


def test_hadolint_passes_the_dockerfile() -> None:
    assert checks.hadolint_problems() == []


@pytest.mark.parametrize(("old", "new", "rule"), [
    ("tini=0.19.0-1+b3", "tini", "DL3008"),  # unpinned apt package
    ("org.opencontainers.image.revision=", "org.example.revision=", "revision"),  # required label missing
    ("USER 10001:10001", "USER root", "DL3002"),  # last user root
])
def test_hadolint_fails_a_broken_dockerfile(tmp_path: Path, old: str, new: str, rule: str) -> None:
    problems = checks.hadolint_problems(variant(tmp_path, checks.DOCKERFILE, old, new))
    assert any(rule in p for p in problems), problems


def test_dockerfile_meets_the_runner_needs() -> None:
    assert checks.dockerfile_problems() == []


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("python:3.11.14-slim-bookworm", "python:3.11-slim", "base image"),
    ('ENTRYPOINT ["tini", "-s", "--", "strategy-runner"]', 'ENTRYPOINT ["strategy-runner"]', "init as PID 1"),
    ('CMD ["backtest"]', 'CMD ["backtests"]', "CMD"),
    ("USER 10001:10001", "USER 0", "root"),
    ("--no-install-recommends tini", "--no-install-recommends gcc tini", "compiler"),
    ("    IMAGE_REVISION=${IMAGE_REVISION}", "    GIT_SHA=${IMAGE_REVISION}", "IMAGE_REVISION"),
    ("COPY configs/ configs/", "COPY configs/base.json configs/", "configs/"),
    ("WORKDIR /app", "WORKDIR /srv", "WORKDIR"),
])
def test_dockerfile_check_fails_a_broken_dockerfile(tmp_path: Path, old: str, new: str, expected: str) -> None:
    problems = checks.dockerfile_problems(variant(tmp_path, checks.DOCKERFILE, old, new))
    assert any(expected in p for p in problems), problems


def test_the_image_command_and_the_v8_override_are_accepted_by_the_cli() -> None:
    assert checks.cli_problems("CMD", ["backtest"]) == []
    assert checks.cli_problems("v8 Command", ["backtest", "--config"]) == []
    assert checks.cli_problems("typo", ["backtset"]) != []


def test_build_context_holds_what_the_image_needs_and_nothing_heavy() -> None:
    assert checks.dockerignore_problems() == []


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("!data/\n", "", "data/BTC_USDT-5m.feather is excluded"),
    ("**\n", "", ".venv/bin/python would be sent"),
    ("**/__pycache__\n**/*.pyc\n", "", "__pycache__"),
])
def test_dockerignore_check_fails_a_broken_dockerignore(tmp_path: Path, old: str, new: str, expected: str) -> None:
    problems = checks.dockerignore_problems(variant(tmp_path, checks.DOCKERIGNORE, old, new))
    assert any(expected in p for p in problems), problems


def test_image_lock_pins_the_tested_versions() -> None:
    assert checks.image_lock_problems() == []


def test_test_environment_is_the_dev_lock() -> None:
    assert checks.environment_lock_problems() == []


def test_environment_check_fails_a_drifted_lock(tmp_path: Path) -> None:
    problems = checks.environment_lock_problems(variant(tmp_path, checks.DEV_LOCK, "boto3==", "boto3==0.0.1\n#"))
    assert any("boto3==0.0.1 in dev.txt, but the test environment has" in p for p in problems), problems


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("mlflow-skinny==3.17.2", "mlflow==3.17.2", "full mlflow"),
    ("boto3==", "boto3>=", "not an exact pin"),
    ("structlog==", "structlog==0.0.1\n#", "the tests ran with"),
    ("pydantic==", "pydantic==9.9.9\n#", "pydantic==9.9.9 in the image, but the tests ran with"),
    ("psutil==", "# psutil==", "psutil>=6 (pyproject.toml) is missing"),
    ("s3transfer==", "# s3transfer==", "boto3 requires s3transfer"),
])
def test_image_lock_check_fails_a_broken_lock(tmp_path: Path, old: str, new: str, expected: str) -> None:
    problems = checks.image_lock_problems(variant(tmp_path, checks.IMAGE_LOCK, old, new))
    assert any(expected in p for p in problems), problems
