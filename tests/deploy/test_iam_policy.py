"""The task role's policy: exact actions (checked against the IAM catalogue), exact ARNs,
and exactly what the runner configured by the task definition needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import checks


def test_task_role_policy_is_least_privilege() -> None:
    assert checks.iam_policy_problems() == []


def statement(doc: dict, sid: str) -> dict:
    return next(s for s in doc["Statement"] if s["Sid"] == sid)


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda d: statement(d, "WorkflowStateTable").update(Action="dynamodb:*"), "wildcard action"),
    (lambda d: statement(d, "ResultsWrite")["Action"].append("s3:*Object"), "wildcard action"),
    (lambda d: statement(d, "WorkflowStateTable")["Action"].append("dynamodb:GetItems"), "not an IAM action"),
    (lambda d: statement(d, "WorkflowStateTable").update(Resource="*"), "supports resource-level permissions"),
    (lambda d: statement(d, "ResultsWrite").update(Resource=["arn:aws:s3:::*"]), "wildcard"),
    (lambda d: statement(d, "WorkflowStateTable")["Resource"].pop(), "trace_id-index"),
    (lambda d: statement(d, "ResultsWrite")["Action"].append("s3:DeleteObject"), "never calls it"),
    (lambda d: statement(d, "Logs").update(NotAction=["iam:PassRole"]), "NotAction"),
    (lambda d: statement(d, "ResultsWrite").update(Resource=["arn:aws:s3:::tradai-${Environment}-results/*"]),
     "beyond what the runner needs"),
])
def test_iam_check_fails_a_broken_policy(tmp_path: Path, edit, expected: str) -> None:
    problems = checks.iam_policy_problems(checks.broken(checks.TASK_ROLE_POLICY, tmp_path, edit))
    assert any(expected in p for p in problems), problems
