"""The sweep workflow end to end on moto's server: the production ASL's Distributed Map (items
read from S3), each item run by a real `strategy-runner backtest` with the environment the
Map built, then `strategy-runner sweep gather` writing sweep-result.json to S3.

moto cannot run ECS: every ecs:runTask state goes out through sqs:sendMessage.waitForTaskToken
instead (as in workflow.py), and the test plays ECS: it starts the container command with the
message's environment. RunBacktest's container calls back itself (TASK_TOKEN); for the .sync
GatherResults task the test reports the container's exit as ECS would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from strategy_runner.status.dynamodb import create_table

from ..conftest import ROOT

SWEEP_ASL = ROOT / "deploy" / "stepfunctions" / "backtest-sweep.asl.json"
SPEC = """
[sweep]
name = "{name}"
strategy = "EmaCrossSpot"
config = "base.json"
timeframe = "5m"
timeranges = ["20241101-20241108"]
pairs = [["BTC/USDT"], ["ETH/USDT"], ["XRP/USDT"]]   # XRP/USDT: a market with no candles here

[parameters]
fast = [8]
"""


def twin(queue_url: str) -> dict[str, Any]:
    """The production definition with each ECS task sent through SQS (the rest unchanged)."""
    machine = json.loads(SWEEP_ASL.read_text())
    # moto's ASL parser takes only a decimal here (AWS and statelint take the integer).
    machine["States"]["RunItems"]["ToleratedFailurePercentage"] = float(machine["States"]["RunItems"]["ToleratedFailurePercentage"])
    run = machine["States"]["RunItems"]["ItemProcessor"]["States"]["RunBacktest"]
    run["Resource"] = "arn:aws:states:::sqs:sendMessage.waitForTaskToken"
    run["Parameters"] = {"QueueUrl": queue_url, "MessageBody": {
        "Environment": run["Parameters"]["Overrides"]["ContainerOverrides"][0]["Environment"]}}
    gather = machine["States"]["GatherResults"]
    command = gather["Parameters"]["Overrides"]["ContainerOverrides"][0]["Command.$"]
    gather["Resource"] = "arn:aws:states:::sqs:sendMessage.waitForTaskToken"
    gather["Parameters"] = {"QueueUrl": queue_url,
                            "MessageBody": {"Command.$": command, "TaskToken.$": "$$.Task.Token"}}
    return machine


class PlayEcs(threading.Thread):
    """Starts the container command of every task message, like ECS RunTask."""

    def __init__(self, aws: Any, queue_url: str, env: dict[str, str]):
        super().__init__(daemon=True)
        self.sqs, self.sfn = aws.client("sqs"), aws.client("stepfunctions")
        self.queue_url, self.env, self.stop = queue_url, env, threading.Event()
        self.started: list[dict[str, Any]] = []

    def run(self) -> None:
        with __import__("concurrent.futures").futures.ThreadPoolExecutor(max_workers=3) as pool:
            while not self.stop.is_set():
                for message in self.sqs.receive_message(QueueUrl=self.queue_url, WaitTimeSeconds=1,
                                                        MaxNumberOfMessages=10).get("Messages", []):
                    self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                    pool.submit(self.container, json.loads(message["Body"]))

    def container(self, body: dict[str, Any]) -> None:
        env = {**self.env, **{e["Name"]: e["Value"] for e in body.get("Environment", [])}}
        command = body.get("Command") or ["backtest"]
        self.started.append({"command": command, "env": env})
        done = subprocess.run([sys.executable, "-m", "strategy_runner", *command], env=env, capture_output=True,
                              text=True, timeout=600)
        if "TaskToken" in body:  # a .sync task: ECS reports the container's exit
            if done.returncode == 0:
                self.sfn.send_task_success(taskToken=body["TaskToken"], output=json.dumps({"ExitCode": 0}))
            else:
                self.sfn.send_task_failure(taskToken=body["TaskToken"], error="States.TaskFailed",
                                           cause=done.stderr[-1000:])


def test_a_sweep_runs_on_step_functions_and_gathers_its_result(aws, aws_name, run_env, tmp_path: Path) -> None:
    ddb, s3, sfn, sqs = (aws.client(s) for s in ("dynamodb", "s3", "stepfunctions", "sqs"))
    create_table(ddb, aws_name)
    bucket = f"{aws_name}-results"
    s3.create_bucket(Bucket=bucket)
    queue = sqs.create_queue(QueueName=aws_name)["QueueUrl"]
    machine = sfn.create_state_machine(name=aws_name, roleArn="arn:aws:iam::123456789012:role/tradai-sweep",
                                       definition=json.dumps(twin(queue)))["stateMachineArn"]
    env = {**run_env, **aws.env, "DYNAMODB_TABLE": aws_name, "RESULTS_BUCKET": bucket, "TRACKING": "false",
           "HEARTBEAT_INTERVAL_SECONDS": "2", "SWEEP_STATE_MACHINE_ARN": machine}
    spec = tmp_path / "sweep.toml"
    spec.write_text(SPEC.format(name=aws_name))
    ecs = PlayEcs(aws, queue, {**env, "RUNS_DIR": str(tmp_path / "container-runs")})
    ecs.start()
    try:
        started = subprocess.run([sys.executable, "-m", "strategy_runner", "sweep", str(spec), "--aws"], env=env,
                                 capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert started.returncode == 0, started.stderr
        arn = next(line.split()[1] for line in started.stdout.splitlines() if line.startswith("execution "))
        deadline = time.monotonic() + 300
        while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            assert time.monotonic() < deadline, "the sweep execution did not finish"
            time.sleep(0.5)
    finally:
        ecs.stop.set()
    assert described["status"] == "SUCCEEDED", described
    items = json.loads(described["output"])["items_result"]
    by_run = {i["run_id"]: i for i in items}
    assert {r: i["status"] for r, i in by_run.items()} == {
        f"{aws_name}-1": "COMPLETED", f"{aws_name}-2": "COMPLETED", f"{aws_name}-3": "FAILED"}
    assert by_run[f"{aws_name}-3"]["error"] == "DataStaleError"
    backtests = [s["env"] for s in ecs.started if s["command"] == ["backtest"]]
    assert sorted(e["RUN_ID"] for e in backtests) == [f"{aws_name}-{n}" for n in (1, 2, 3)]
    assert {e["STRATEGY_PARAMETERS"] for e in backtests} == {'{"fast": 8}'}
    result = json.loads(s3.get_object(Bucket=bucket, Key=f"backtests/sweeps/{aws_name}/sweep-result.json")["Body"].read())
    assert result["counts"] == {"COMPLETED": 2, "FAILED": 1} and len(result["rows"]) == 3
    assert all(isinstance(r["metrics"].get("total_trades"), int) for r in result["rows"] if r["status"] == "COMPLETED")
    shown = subprocess.run([sys.executable, "-m", "strategy_runner", "sweep", "status", aws_name], env=env,
                           capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert f"sweep {aws_name}: 3 items: COMPLETED 2, FAILED 1" in shown.stdout, shown.stderr
    assert f"failed: {aws_name}-3 DataStaleError" in shown.stdout
