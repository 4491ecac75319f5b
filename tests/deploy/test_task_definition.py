"""The ECS task definition against the ECS API model (botocore), the runbooks and the settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import checks


def test_task_definition_is_valid_and_matches_the_settings() -> None:
    assert checks.task_definition_problems() == []


def container(doc: dict) -> dict:
    return doc["containerDefinitions"][0]


def set_env(name: str, value: str):
    def edit(doc: dict) -> None:
        env = container(doc)["environment"]
        env[:] = [e for e in env if e["name"] != name] + [{"name": name, "value": value}]
    return edit


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda d: container(d).update(stopTimeOut=120), "Unknown parameter"),  # typo: ECS would reject it
    (lambda d: container(d).update(stopTimeout="120"), "Invalid type"),
    (lambda d: d.update(memory="1024"), "1 vCPU / 2 GB"),
    (lambda d: container(d)["linuxParameters"].update(initProcessEnabled=False), "initProcessEnabled"),
    (lambda d: container(d).update(stopTimeout=30), "stopTimeout 30"),
    (lambda d: container(d).update(name="strategy-container"), "no container named 'strategy'"),
    (lambda d: container(d).update(command=["run-backtest"]), "does not accept"),
    (set_env("TRADAI_TABLE", "x"), "TRADAI_TABLE is not read by the runner"),
    (set_env("HEARTBEAT_INTERVAL_SECONDS", "0"), "HEARTBEAT_INTERVAL_SECONDS='0'"),
    (set_env("LOG_STREAM_PREFIX", "strategy"), "LOG_STREAM_PREFIX"),
    (lambda d: container(d)["logConfiguration"]["options"].update({"awslogs-group": "/ecs/strategy"}), "awslogs-group"),
    (lambda d: d.update(family="tradai-strategy-${Env}"), "unknown placeholder ${Env}"),
    (lambda d: container(d).update(readonlyRootFilesystem=False), "readonlyRootFilesystem must be true"),
    (lambda d: container(d)["mountPoints"].pop(0), "RUNS_DIR /app/runs is on the read-only root"),
    (set_env("DATA_DIR", "data"), "DATA_DIR (DATA_S3_PATH downloads into it) /app/data is on the read-only root"),
    (lambda d: d.update(volumes=[{"name": "runs"}]), "names no task volume 'scratch'"),
])
def test_task_definition_check_fails_a_broken_variant(tmp_path: Path, edit, expected: str) -> None:
    problems = checks.task_definition_problems(checks.broken(checks.TASK_DEFINITION, tmp_path, edit))
    assert any(expected in p for p in problems), problems
