"""The sweep workflow (deploy/stepfunctions/backtest-sweep.asl.json), checked without AWS:
statelint, the ECS API model, the runner's settings, and the same RunBacktest as the single run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from . import checks

SWEEP = checks.ROOT / "deploy" / "stepfunctions" / "backtest-sweep.asl.json"


def item_task(machine: dict[str, Any]) -> dict[str, Any]:
    return machine["States"]["RunItems"]["ItemProcessor"]["States"]["RunBacktest"]


#: statelint 3.1 predates the Distributed Map's JSON reader (AWS's own example sets it).
STATELINT_LAGS = ('Field "InputType" not allowed in State Machine.States.RunItems.ItemReader.ReaderConfig',)


def sweep_problems(path: Path = SWEEP) -> list[str]:
    problems = [p for p in checks.statelint_problems(path) if not p.endswith(STATELINT_LAGS)]
    machine, more = checks.load_rendered_json(path)
    single, _ = checks.load_rendered_json(checks.STATE_MACHINE)
    problems += more
    if machine is None:
        return problems
    items = machine["States"].get("RunItems", {})
    if items.get("Type") != "Map" or items.get("ItemProcessor", {}).get("ProcessorConfig", {}).get("Mode") != "DISTRIBUTED":
        problems.append("RunItems must be a Distributed Map (thousands of items, each its own child execution)")
    if items.get("ItemReader", {}).get("Resource") != "arn:aws:states:::s3:getObject":
        problems.append("RunItems must read its items from S3 (the 256 KB state limit)")
    if not 0 < items.get("MaxConcurrency", 0) <= 1000:
        problems.append("RunItems needs a MaxConcurrency (Fargate Spot capacity and the account's task quota)")
    if "ToleratedFailurePercentage" not in items:
        problems.append("RunItems needs a ToleratedFailurePercentage")
    run, reference = item_task(machine), single["States"]["RunBacktest"]
    for key in ("Resource", "TimeoutSeconds", "HeartbeatSeconds", "Retry"):
        if run.get(key) != reference.get(key):
            problems.append(f"RunBacktest {key} differs from the single-run workflow's: {run.get(key)!r}")
    params = run.get("Parameters", {})
    for key in ("Cluster", "TaskDefinition", "CapacityProviderStrategy", "NetworkConfiguration"):
        if params.get(key) != reference["Parameters"].get(key):
            problems.append(f"RunBacktest Parameters.{key} differs from the single-run workflow's")
    problems += checks._botocore_shape_problems("ecs", "RunTask", checks._as_api_params(params), "RunBacktest Parameters")
    override = params["Overrides"]["ContainerOverrides"][0]
    dynamic = {e["Name"]: e["Value.$"] for e in override["Environment"] if "Value.$" in e}
    static = {e["Name"]: e["Value"] for e in override["Environment"] if "Value" in e}
    problems += checks.runner_env_problems("RunBacktest environment", static, set(dynamic))
    if dynamic.get("TASK_TOKEN") != "$$.Task.Token":
        problems.append("RunBacktest: TASK_TOKEN must be $$.Task.Token")
    catch = next((c for c in run.get("Catch", []) if "States.ALL" in c.get("ErrorEquals", [])), None)
    if catch is None:
        problems.append("RunBacktest: no Catch States.ALL: one failed item would fail the whole Map")
    gather = machine["States"].get("GatherResults", {})
    if gather.get("Parameters", {}).get("Overrides", {}).get("ContainerOverrides", [{}])[0].get("Command.$") != \
            "States.Array('sweep', 'gather', $.sweep_id)":
        problems.append("GatherResults must run `strategy-runner sweep gather <sweep id>`")
    else:
        problems += checks.cli_problems("GatherResults command", ["sweep", "gather", "ema-grid"])
    return problems


def test_the_sweep_workflow_is_valid_and_runs_the_single_run_task() -> None:
    assert sweep_problems() == []


def broken(tmp_path: Path, edit) -> Path:
    doc = json.loads(SWEEP.read_text())
    edit(doc)
    path = tmp_path / SWEEP.name
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda d: item_task(d)["Retry"].pop(), "Retry differs from the single-run workflow's"),
    (lambda d: item_task(d).update(HeartbeatSeconds=30), "HeartbeatSeconds differs"),
    (lambda d: item_task(d).pop("Catch"), "one failed item would fail the whole Map"),
    (lambda d: d["States"]["RunItems"].pop("ItemReader"), "read its items from S3"),
    (lambda d: d["States"]["RunItems"].pop("MaxConcurrency"), "needs a MaxConcurrency"),
    (lambda d: item_task(d)["Parameters"]["Overrides"]["ContainerOverrides"][0]["Environment"].append(
        {"Name": "SWEEP_NAME", "Value.$": "$.sweep_id"}), "SWEEP_NAME is not read by the runner"),
    (lambda d: item_task(d)["Parameters"].update(Cluster="other"), "Parameters.Cluster differs"),
])
def test_a_broken_sweep_workflow_is_caught(tmp_path: Path, edit, expected: str) -> None:
    problems = sweep_problems(broken(tmp_path, edit))
    assert any(expected in p for p in problems), problems
