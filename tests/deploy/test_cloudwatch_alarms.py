"""deploy/cloudwatch/alarms.json: valid PutMetricAlarm calls on metrics the runner's EMF record has."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import checks


def test_alarms_are_valid_and_read_the_runners_metrics() -> None:
    assert checks.alarm_problems() == []


def alarm(doc: dict, suffix: str) -> dict:
    return next(a for a in doc["Alarms"] if a["AlarmName"].endswith(suffix))


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda d: d["Alarms"].pop(0), "backtest-failures-high"),
    (lambda d: alarm(d, "duration-long").update(MetricName="ExecutionDuration"), "not in the runner's EMF record"),
    (lambda d: alarm(d, "duration-long").update(Unit="Milliseconds"), "Unit 'Milliseconds'"),
    (lambda d: alarm(d, "failures-high").update(Dimensions=[{"Name": "Pair", "Value": "BTC/USDT"}]),
     "not a set the runner publishes"),
    (lambda d: alarm(d, "failures-high").update(Treshold=5), "Unknown parameter"),
    (lambda d: alarm(d, "failures-high").update(Threshold="5"), "Threshold"),
    (lambda d: alarm(d, "dlq-messages").update(AlarmActions=["mailto:ops@example.com"]), "not an SNS topic ARN"),
])
def test_alarm_check_fails_a_broken_variant(tmp_path: Path, edit, expected: str) -> None:
    problems = checks.alarm_problems(checks.broken(checks.ALARMS, tmp_path, edit))
    assert any(expected in p for p in problems), problems
