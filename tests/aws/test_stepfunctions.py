"""StepFunctionsOrchestrator against a real waitForTaskToken execution in the emulator."""

from __future__ import annotations

import json
import time

import pytest

from strategy_runner.errors import Cancelled
from strategy_runner.heartbeat.stepfunctions import MAX_CAUSE, StepFunctionsOrchestrator

from .workflow import Workflow


def test_heartbeats_keep_the_task_alive_then_success_is_the_output(aws, aws_name):
    flow = Workflow(aws, aws_name, "unused", heartbeat_seconds=2)
    execution = flow.start()
    sf = StepFunctionsOrchestrator(aws.client("stepfunctions"), execution.token)
    for _ in range(4):  # 4 s > HeartbeatSeconds
        sf.heartbeat()
        time.sleep(1)
    sf.succeed({"run_id": "test-001", "status": "COMPLETED", "metrics": {"sharpe": float("nan"), "winrate": 0.5}})
    described = flow.wait(execution)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"run_id": "test-001", "status": "COMPLETED",
                                               "metrics": {"sharpe": None, "winrate": 0.5}}


def test_failure_carries_the_error_name_and_a_bounded_cause(aws, aws_name):
    flow = Workflow(aws, aws_name, "unused")
    execution = flow.start()
    client = aws.client("stepfunctions")
    sent: list[dict] = []
    client.meta.events.register("before-parameter-build.sfn.SendTaskFailure", lambda params, **_: sent.append(params))
    StepFunctionsOrchestrator(client, execution.token).fail("DataStaleError", "x" * 40000)
    assert flow.wait(execution)["status"] == "FAILED"
    failure = flow.failure(execution)
    assert failure["error"] == "DataStaleError"
    assert len(sent[0]["cause"]) == MAX_CAUSE  # over the API limit the call would be rejected
    if aws.kind != "moto":  # moto 5.2.5 drops the cause of SendTaskFailure
        assert failure["cause"] == "x" * MAX_CAUSE


def test_a_heartbeat_after_the_orchestrator_gave_up_is_cancelled(aws, aws_name):
    flow = Workflow(aws, aws_name, "unused", heartbeat_seconds=1)
    execution = flow.start()
    sf = StepFunctionsOrchestrator(aws.client("stepfunctions"), execution.token)
    assert flow.wait(execution, timeout=15)["status"] == "FAILED"  # no heartbeat: States.Timeout
    assert flow.failure(execution)["error"] == "States.Timeout"
    with pytest.raises(Cancelled, match="TaskTimedOut|TaskDoesNotExist|InvalidToken"):
        sf.heartbeat()


def test_an_unknown_token_is_cancelled(aws):
    with pytest.raises(Cancelled, match="InvalidToken"):
        StepFunctionsOrchestrator(aws.client("stepfunctions"), "not-a-token").heartbeat()
