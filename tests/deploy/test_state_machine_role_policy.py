"""The state machines' execution role (deploy/iam/state-machine-role-policy.json): exact actions
(checked against the IAM catalogue), exact ARNs, and exactly what Step Functions calls for the
states of backtest-simplified.asl.json and backtest-sweep.asl.json, derived from those files."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import checks

POLICY = checks.STATE_MACHINE_ROLE_POLICY
SINGLE, SWEEP = checks.STATE_MACHINE, checks.SWEEP_STATE_MACHINE


def test_state_machine_role_policy_is_least_privilege() -> None:
    assert checks.state_machine_role_problems() == []


def test_the_needs_come_from_the_definitions() -> None:
    needs, problems = checks.state_machine_needs()
    assert problems == []
    by_state = {(where.split(" state ")[1], action) for action, _, _, where in needs}
    # the callback task: RunTask, its tags and the two roles, nothing to follow it with
    assert {("RunBacktest", "ecs:RunTask"), ("RunBacktest", "ecs:TagResource"),
            ("RunBacktest", "iam:PassRole")} <= by_state
    assert ("RunBacktest", "ecs:StopTask") not in by_state
    # the .sync gather task: StopTask/DescribeTasks and the managed events rule too
    assert {("GatherResults", "ecs:StopTask"), ("GatherResults", "ecs:DescribeTasks"),
            ("GatherResults", "events:PutRule")} <= by_state
    # the Distributed Map: child executions on the sweep machine itself, its items from S3
    assert {("RunItems", "states:StartExecution"), ("RunItems", "states:StopExecution"),
            ("RunItems", "s3:GetObject")} <= by_state
    assert ("ValidateStrategy", "lambda:InvokeFunction") in by_state


def statement(doc: dict, sid: str) -> dict:
    return next(s for s in doc["Statement"] if s["Sid"] == sid)


def drop(doc: dict, sid: str) -> None:
    doc["Statement"].remove(statement(doc, sid))


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda d: statement(d, "SweepChildExecutionsStart").update(Action="states:*"), "wildcard action"),
    (lambda d: statement(d, "WorkflowFunctions").update(Action=["lambda:InvokeFunctions"]), "not an IAM action"),
    (lambda d: statement(d, "FollowSyncTasks").update(Resource="*"), "supports resource-level permissions"),
    (lambda d: statement(d, "SweepItemsRead").update(Resource=["arn:aws:s3:::*/sweeps/*"]), "may only end a key prefix"),
    (lambda d: statement(d, "SweepChildExecutionsStart").update(
        Resource=["arn:aws:states:*:${AccountId}:stateMachine:tradai-${Environment}-sweep"]), "exact partition, service, region"),
    (lambda d: statement(d, "SweepItemsRead").update(NotResource=["arn:aws:s3:::x"]), "NotResource"),
    (lambda d: drop(d, "SweepItemsRead"), "state RunItems makes Step Functions call s3:GetObject"),
    (lambda d: drop(d, "SyncTaskEventsRule"), "state GatherResults makes Step Functions call events:PutRule"),
    (lambda d: drop(d, "TagTheTaskAtLaunch"), "call ecs:TagResource"),
    (lambda d: drop(d, "SweepChildExecutionsStart"), "call states:StartExecution"),
    (lambda d: statement(d, "PassTheTaskRoles").pop("Condition"), "no iam:PassedToService condition"),
    (lambda d: statement(d, "PassTheTaskRoles").pop("Condition"), "iam:PassRole is allowed on"),
    (lambda d: statement(d, "PassTheTaskRoles")["Resource"].append("arn:aws:iam::${AccountId}:role/admin"),
     "beyond what the state machines need"),
    (lambda d: statement(d, "TagTheTaskAtLaunch").pop("Condition"), "ecs:TagResource is allowed on"),
    (lambda d: statement(d, "RunTheStrategyTask").pop("Condition"), "another-cluster"),
    (lambda d: statement(d, "RunTheStrategyTask").update(
        Resource=["arn:aws:ecs:${Region}:${AccountId}:task-definition/*"]), "another-family"),
    (lambda d: statement(d, "RunTheStrategyTask").update(
        Condition={"ArnEquals": {"ecs:clusters": "arn:aws:ecs:${Region}:${AccountId}:cluster/tradai-${Environment}"}}),
     "condition key 'ecs:clusters'"),
    (lambda d: statement(d, "RunTheStrategyTask").update(
        Condition={"ArnNotEquals": {"ecs:cluster": "arn:aws:ecs:${Region}:${AccountId}:cluster/x"}}),
     "condition operator 'ArnNotEquals'"),
    (lambda d: statement(d, "SweepChildExecutionsStart").update(
        Resource=["arn:aws:states:${Region}:${AccountId}:stateMachine:*"]), "another-machine"),
    (lambda d: statement(d, "SweepItemsRead").update(Resource=["arn:aws:s3:::tradai-${Environment}-results/*"]),
     "backtest-result.json"),
    (lambda d: statement(d, "SweepItemsRead")["Action"].append("s3:PutObject"), "beyond what the state machines need"),
    (lambda d: statement(d, "WorkflowFunctions")["Resource"].append(
        "arn:aws:lambda:${Region}:${AccountId}:function:tradai-admin"), "granted but no state needs it"),
    (lambda d: d["Statement"].append({"Sid": "Logs", "Effect": "Allow", "Action": ["logs:PutLogEvents"],
                                      "Resource": ["arn:aws:logs:${Region}:${AccountId}:log-group:x:*"]}),
     "logs:PutLogEvents on"),
])
def test_a_broken_role_policy_is_caught(tmp_path: Path, edit, expected: str) -> None:
    problems = checks.state_machine_role_problems(checks.broken(POLICY, tmp_path, edit))
    assert any(expected in p for p in problems), problems


def sweep_state(doc: dict, name: str) -> dict:
    return doc["States"]["RunItems"]["ItemProcessor"]["States"][name] if name == "RunBacktest" else doc["States"][name]


def add_state(doc: dict, name: str, state: dict) -> None:
    """Put a state between GatherResults and the end of the sweep."""
    doc["States"]["GatherResults"].pop("End")
    doc["States"]["GatherResults"]["Next"] = name
    doc["States"][name] = {**state, "End": True}


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda d: add_state(d, "Announce", {"Type": "Task", "Resource": "arn:aws:states:::sns:publish",
                                         "Parameters": {"TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
                                                        "Message.$": "$.sweep_id"}}),
     "state Announce makes Step Functions call sns:Publish"),
    (lambda d: add_state(d, "Rank", {"Type": "Task",
                                     "Resource": "arn:aws:lambda:${Region}:${AccountId}:function:tradai-rank-sweep"}),
     "call lambda:InvokeFunction on arn:aws:lambda:us-east-1:123456789012:function:tradai-rank-sweep"),
    (lambda d: add_state(d, "Count", {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:dynamodb:query",
                                      "Parameters": {"TableName": "t"}}),
     "call dynamodb:Query"),
    (lambda d: add_state(d, "Odd", {"Type": "Task", "Resource": "arn:aws:foo:::bar"}), "does not know what it calls"),
    (lambda d: d["States"]["RunItems"]["ItemReader"].update(Resource="arn:aws:states:::s3:listObjectsV2"),
     "call s3:ListBucket"),
    (lambda d: d["States"]["RunItems"].update(ResultWriter={
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": "tradai-${Environment}-results", "Prefix": "backtests/sweeps/map-runs"}}),
     "call s3:PutObject"),
    # A callback where there was a .sync: nothing follows the task any more, so the grants for it go.
    (lambda d: d["States"]["GatherResults"].update(Resource="arn:aws:states:::ecs:runTask.waitForTaskToken"),
     "ecs:StopTask on arn:aws:ecs:us-east-1:123456789012:task/tradai-dev/* is granted but no state needs it"),
    (lambda d: d["States"]["RunItems"]["ItemProcessor"]["ProcessorConfig"].update(Mode="INLINE"),
     "states:StartExecution on arn:aws:states:us-east-1:123456789012:stateMachine:tradai-dev-sweep is granted"),
    (lambda d: sweep_state(d, "RunBacktest")["Parameters"].update(TaskDefinition="tradai-other-${Environment}"),
     "is not task-definition.json's family"),
])
def test_a_new_call_in_the_sweep_workflow_needs_the_policy(tmp_path: Path, edit, expected: str) -> None:
    sweep = checks.broken(SWEEP, tmp_path, edit)
    problems = checks.state_machine_role_problems(machines=(SINGLE, sweep))
    assert any(expected in p for p in problems), problems


def test_the_item_reader_follows_where_sweep_aws_writes_items(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ItemReader's bucket and key are paths in the execution input; the check resolves them to
    where `strategy-runner sweep --aws` puts items.json, so moving that fails the policy."""
    from strategy_runner.sweep import aws

    monkeypatch.setattr(aws, "items_key", lambda prefix, sweep_id: f"sweep-items/{sweep_id}.json")
    problems = checks.state_machine_role_problems()
    assert any("s3:GetObject on arn:aws:s3:::tradai-dev-results/sweep-items/ema-grid.json" in p
               for p in problems), problems


def test_only_step_functions_of_this_account_assumes_the_role() -> None:
    assert checks.state_machine_trust_problems() == []


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda d: d["Statement"][0].update(Principal={"Service": ["states.amazonaws.com", "lambda.amazonaws.com"]}),
     "only the Step Functions service"),
    (lambda d: d["Statement"][0].update(Principal={"AWS": "*"}), "only the Step Functions service"),
    (lambda d: d["Statement"][0].update(Action=["sts:AssumeRole", "sts:TagSession"]), "sts:AssumeRole only"),
    (lambda d: d["Statement"][0].pop("Condition"), "confused deputy"),
])
def test_a_broken_trust_policy_is_caught(tmp_path: Path, edit, expected: str) -> None:
    problems = checks.state_machine_trust_problems(checks.broken(checks.STATE_MACHINE_TRUST_POLICY, tmp_path, edit))
    assert any(expected in p for p in problems), problems
