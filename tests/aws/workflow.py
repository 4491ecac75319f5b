"""The seed's simplified workflow (003, section 2) as far as an emulator can run it.

RunBacktest is an ECS ``runTask.sync`` task in the seed; moto cannot run ECS, so here the
same Parameters go out through ``sqs:sendMessage.waitForTaskToken`` instead: the message
carries the container Environment exactly as the seed's state builds it (States.Format,
States.JsonToString) plus TASK_TOKEN, and the test plays ECS by starting the container
command with that environment.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# The seed's documented test input (section 6). The RunBacktest state reads $.start_date and
# $.end_date, which the test input only has under config_overrides.backtester: copied up.
# MomentumStrategy does not exist in this repository; EmaCrossFutures is the futures one.
TEST_INPUT = {
    "run_id": "test-001",
    "strategy_name": "EmaCrossFutures",
    "strategy_version": "1.0.0",
    "experiment_name": "test-experiment",
    "symbols": ["BTC/USDT:USDT"],
    "timeframe": "1h",
    "config_overrides": {"backtester": {"START_DATE": "2024-01-01", "END_DATE": "2024-06-01"}},
    "start_date": "2024-01-01",
    "end_date": "2024-06-01",
}


def run_backtest_environment(table: str) -> list[dict[str, str]]:
    """The seed's RunBacktest ContainerOverrides Environment, verbatim but for two values:
    the table is this test's, and MLflow is off (no server at mlflow.tradai.local here)."""
    return [
        {"Name": "RUN_ID", "Value.$": "$.run_id"},
        {"Name": "STRATEGY", "Value.$": "$.strategy_name"},
        {"Name": "TIMEFRAME", "Value.$": "$.timeframe"},
        {"Name": "TIMERANGE", "Value.$": "States.Format('{}-{}', $.start_date, $.end_date)"},
        {"Name": "PAIRS", "Value.$": "States.JsonToString($.symbols)"},
        {"Name": "EXPERIMENT_NAME", "Value.$": "$.experiment_name"},
        {"Name": "DYNAMODB_TABLE", "Value": table},
        {"Name": "MLFLOW_TRACKING_URI", "Value": ""},
        {"Name": "TASK_TOKEN", "Value.$": "$$.Task.Token"},
    ]


def definition(queue_url: str, table: str, *, heartbeat_seconds: int, timeout_seconds: int = 7200) -> dict[str, Any]:
    return {
        "Comment": "TradAI Backtest Workflow v9.2 (RunBacktest through SQS for the emulator)",
        "StartAt": "RunBacktest",
        "States": {
            "RunBacktest": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "TimeoutSeconds": timeout_seconds,
                "HeartbeatSeconds": heartbeat_seconds,
                "Parameters": {
                    "QueueUrl": queue_url,
                    "MessageBody": {"Environment": run_backtest_environment(table)},
                },
                "End": True,
            }
        },
    }


@dataclass
class Execution:
    arn: str
    environment: dict[str, str]  # what the "container" receives

    @property
    def token(self) -> str:
        return self.environment["TASK_TOKEN"]


class Workflow:
    def __init__(self, aws: Any, name: str, table: str, *, heartbeat_seconds: int = 300):
        self.sfn = aws.client("stepfunctions")
        self.sqs = aws.client("sqs")
        self.queue_url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        self.arn = self.sfn.create_state_machine(
            name=name, roleArn="arn:aws:iam::123456789012:role/tradai-stepfunctions",
            definition=json.dumps(definition(self.queue_url, table, heartbeat_seconds=heartbeat_seconds)),
        )["stateMachineArn"]

    def start(self, test_input: dict[str, Any] | None = None) -> Execution:
        arn = self.sfn.start_execution(stateMachineArn=self.arn, input=json.dumps(test_input or TEST_INPUT))[
            "executionArn"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, WaitTimeSeconds=2).get("Messages", [])
            if messages:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
                body = json.loads(messages[0]["Body"])
                return Execution(arn, {e["Name"]: e["Value"] for e in body["Environment"]})
        raise AssertionError("the RunBacktest task never sent its message")

    def wait(self, execution: Execution, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            described = self.sfn.describe_execution(executionArn=execution.arn)
            if described["status"] != "RUNNING" or time.monotonic() > deadline:
                return described
            time.sleep(0.1)

    def history(self, execution: Execution) -> list[dict[str, Any]]:
        return self.sfn.get_execution_history(executionArn=execution.arn, maxResults=1000)["events"]

    def task_seconds(self, execution: Execution) -> float:
        """From the task's start until it ended (the span heartbeats had to cover)."""
        events = self.history(execution)
        start = next(e["timestamp"] for e in events if e["type"] == "TaskSubmitted")
        end = next(e["timestamp"] for e in events if e["type"] in ("TaskSucceeded", "TaskFailed", "TaskTimedOut"))
        return (end - start).total_seconds() if isinstance(start, datetime) else float("nan")

    def failure(self, execution: Execution) -> dict[str, Any]:
        for event in self.history(execution):
            for key in ("executionFailedEventDetails", "taskFailedEventDetails"):
                if key in event:
                    return event[key]
        return {}
