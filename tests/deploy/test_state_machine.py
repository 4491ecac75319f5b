"""The simplified v9.2 workflow: statelint, the ECS RunTask model, the settings and errors.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import checks


def test_state_machine_is_valid_and_fits_the_runner() -> None:
    assert checks.state_machine_problems() == []


def run(doc: dict) -> dict:
    return doc["States"]["RunBacktest"]


def environment(doc: dict) -> list:
    return run(doc)["Parameters"]["Overrides"]["ContainerOverrides"][0]["Environment"]


def drop_env(name: str):
    def edit(doc: dict) -> None:
        environment(doc)[:] = [e for e in environment(doc) if e["Name"] != name]
    return edit


def retry_names(doc: dict, old: str, new: list[str]) -> None:
    for retrier in run(doc)["Retry"]:
        if old in retrier["ErrorEquals"]:
            retrier["ErrorEquals"] = [n for n in retrier["ErrorEquals"] if n != old] + new
            if not retrier["ErrorEquals"]:
                run(doc)["Retry"].remove(retrier)
            return


@pytest.mark.parametrize(("edit", "expected"), [
    # statelint: ASL structure.
    (lambda d: run(d).update(Next="NoSuchState"), "statelint"),
    (lambda d: d["States"].pop("FailDataStale"), "statelint"),
    (lambda d: d["States"]["EvaluateValidation"].pop("Choices"), "statelint"),
    (lambda d: run(d).update(HeartbeatSeconds="300"), "HeartbeatSeconds 300"),
    # The ECS RunTask API model and rules.
    (lambda d: run(d)["Parameters"].update(LaunchType="FARGATE"), "exclude each other"),
    (lambda d: run(d)["Parameters"].update(Clusterr="x"), "Unknown parameter"),
    (lambda d: run(d)["Parameters"].update(TaskDefinition="strategy-x"), "not the task family"),
    # The runner's contract.
    (lambda d: run(d).update(Resource="arn:aws:states:::ecs:runTask.sync"), "waitForTaskToken"),
    (drop_env("TASK_TOKEN"), "TASK_TOKEN must be $$.Task.Token"),
    (lambda d: environment(d).append({"Name": "TRADAI_STRATEGY", "Value.$": "$.strategy_name"}),
     "TRADAI_STRATEGY is not read by the runner"),
    (lambda d: environment(d).append({"Name": "TIMEFRAME", "Value": "7m"}), "TIMEFRAME='7m'"),
    (lambda d: run(d).update(HeartbeatSeconds=90), "HeartbeatSeconds 90"),
    (lambda d: run(d).update(TimeoutSeconds=3600), "TimeoutSeconds 3600"),
    # Retry/Catch against errors.py.
    (lambda d: retry_names(d, "SpotInterrupted", ["SpotInterupted"]), "never reports"),
    (lambda d: retry_names(d, "SpotInterrupted", []), "SpotInterrupted is retryable"),
    (lambda d: retry_names(d, "StatusStoreUnavailable", []), "StatusStoreUnavailable is retryable"),
    (lambda d: retry_names(d, "ResultsAccessError", []) or retry_names(d, "SpotInterrupted",
                                                                       ["SpotInterrupted", "ResultsAccessError"]),
     "ResultsAccessError is permanent"),
    (lambda d: run(d)["Retry"].pop(0) and run(d)["Retry"].insert(0, {"ErrorEquals": ["States.ALL"], "MaxAttempts": 2}),
     "must fail fast"),
    (lambda d: retry_names(d, "ECS.AmazonECSException", []), "ECS.AmazonECSException"),
    (lambda d: run(d).pop("Catch"), "no Catch"),
    (lambda d: d["States"]["NotifyFailure"].update(Next=None, End=True) or d["States"]["NotifyFailure"].pop("Next"),
     "ends in success"),
])
def test_state_machine_check_fails_a_broken_variant(tmp_path: Path, edit, expected: str) -> None:
    problems = checks.state_machine_problems(checks.broken(checks.STATE_MACHINE, tmp_path, edit))
    assert any(expected in p for p in problems), problems
