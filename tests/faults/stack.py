"""The fault matrix's stack and probes: one moto server, one `mlflow server` and one
recording Step Functions endpoint per session; a fresh table, bucket and task token per
case; the runner as its own process, timed; and what each case asserts about the outcome.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strategy_runner.status.dynamodb import DynamoDBStatusStore, create_table
from tests.guard.faults import TEMPLATE

ROOT = Path(__file__).resolve().parents[2]
#: A few days of the bundled 5m candles, one pair: each backtest takes seconds.
SHORT = "20240101-20240106"

STRATEGIES = {
    # name: (code in populate_indicators, code in populate_entry_trend)
    "Plain": ("", ""),
    "Raises": ("", "raise ValueError('strategy bug: the entry rule divided by zero')"),
    "RaisesHuge": ("", "raise ValueError('x' * 600_000)"),
    "ExitsZero": ("os._exit(0)", ""),
    "Segfaults": ("os.kill(os.getpid(), signal.SIGSEGV)", ""),
    "Sleepy": ("for _ in range(1200):\n    time.sleep(0.1)", ""),
    # Reads its environment into the log: the worker must not hold the token or AWS secrets.
    "Snoops": ("import logging\nlogging.getLogger('snoop').warning('ENV %s', sorted(os.environ))", ""),
}


def write_strategies(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, (indicators, entry) in STRATEGIES.items():
        body = TEMPLATE.format(name=name, indicators=textwrap.indent(indicators or "pass", " " * 8),
                               entry=textwrap.indent(entry or "pass", " " * 8))
        (directory / f"{name}.py").write_text(body)
    return directory


@dataclass
class Outcome:
    code: int
    seconds: float
    stdout: str
    stderr: str

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.stderr.splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                lines.append(record)
        return lines

    def no_traceback(self) -> None:
        assert "Traceback (most recent call last)" not in self.stderr, self.stderr[-3000:]


@dataclass
class Case:
    """One fault case's world: its table, bucket, token and environment."""

    env: dict[str, str]
    aws: Any
    sfn: Any
    tmp: Path
    run_id: str
    token: str
    table: str
    bucket: str
    procs: list[subprocess.Popen] = field(default_factory=list)

    # --- running ---------------------------------------------------------------------
    def environment(self, **overrides: str | None) -> dict[str, str]:
        env = {**self.env, **{k: v for k, v in overrides.items() if v is not None}}
        for k, v in overrides.items():
            if v is None:
                env.pop(k, None)
        return {k: v for k, v in env.items() if v != ""}

    def start(self, **overrides: str | None) -> subprocess.Popen:
        env = self.environment(**overrides)
        name = uuid.uuid4().hex[:8]
        out = open(self.tmp / f"{name}.out", "w")  # noqa: SIM115 - the child holds it
        err = open(self.tmp / f"{name}.err", "w")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "strategy_runner", "backtest"], env=env, cwd=self.tmp,
                                stdout=out, stderr=err, text=True)
        out.close()
        err.close()
        proc.files = (self.tmp / f"{name}.out", self.tmp / f"{name}.err")  # type: ignore[attr-defined]
        proc.started = time.monotonic()  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def wait(self, proc: subprocess.Popen, timeout: float = 180) -> Outcome:
        code = proc.wait(timeout=timeout)
        seconds = time.monotonic() - proc.started  # type: ignore[attr-defined]
        out, err = proc.files  # type: ignore[attr-defined]
        return Outcome(code, seconds, out.read_text(), err.read_text())

    def run(self, timeout: float = 180, **overrides: str | None) -> Outcome:
        return self.wait(self.start(**overrides), timeout)

    def cli(self, *args: str, **overrides: str | None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "strategy_runner", *args], env=self.environment(**overrides),
                              cwd=self.tmp, capture_output=True, text=True, timeout=120)

    # --- probes ------------------------------------------------------------------------
    @property
    def store(self) -> DynamoDBStatusStore:
        return DynamoDBStatusStore(self.aws.client("dynamodb"), self.table)

    def item(self, run_id: str | None = None) -> dict[str, Any] | None:
        return self.store.get(run_id or self.run_id)

    def all_items(self) -> list[dict[str, Any]]:
        pages = self.aws.client("dynamodb").get_paginator("scan").paginate(TableName=self.table)
        return [i for p in pages for i in p.get("Items", [])]

    def s3_keys(self, run_id: str | None = None) -> list[str]:
        listed = self.aws.client("s3").list_objects_v2(Bucket=self.bucket, Prefix=f"backtests/{run_id or self.run_id}/")
        return sorted(o["Key"].rsplit("/", 1)[1] for o in listed.get("Contents", []))

    def s3_text(self, name: str, run_id: str | None = None) -> str:
        obj = self.aws.client("s3").get_object(Bucket=self.bucket, Key=f"backtests/{run_id or self.run_id}/{name}")
        return obj["Body"].read().decode()

    def callback(self, token: str | None = None):
        return self.sfn.only_callback(token or self.token)

    def failed_with(self, name: str, token: str | None = None) -> dict[str, Any]:
        """Exactly one callback, a SendTaskFailure carrying ``name``; returns its body."""
        call = self.callback(token)
        assert call.op == "SendTaskFailure", (call.op, call.body)
        assert call.body["error"] == name, call.body
        return call.body

    def succeeded(self, token: str | None = None) -> dict[str, Any]:
        call = self.callback(token)
        assert call.op == "SendTaskSuccess", (call.op, call.body)
        return json.loads(call.body["output"])

    def new_token(self) -> str:
        return f"token-{uuid.uuid4().hex}"


def setup_case(aws: Any, sfn: Any, mlflow_uri: str, run_env: dict[str, str], tmp: Path) -> Case:
    table, bucket = f"t-{uuid.uuid4().hex[:10]}", f"b-{uuid.uuid4().hex[:10]}"
    create_table(aws.client("dynamodb"), table)
    aws.client("s3").create_bucket(Bucket=bucket)
    run_id, token = f"f-{uuid.uuid4().hex[:10]}", f"token-{uuid.uuid4().hex}"
    env = {
        **run_env, **aws.env,
        "RUN_ID": run_id, "TASK_TOKEN": token, "AWS_ENDPOINT_URL_SFN": sfn.url,
        "DYNAMODB_TABLE": table, "RESULTS_BUCKET": bucket,
        "STRATEGIES_DIR": str(write_strategies(tmp / "strategies")), "STRATEGY": "Plain",
        "PAIRS": "BTC/USDT", "TIMERANGE": SHORT,
        "HEARTBEAT_INTERVAL_SECONDS": "1", "LEASE_SECONDS": "5",
        "MLFLOW_TRACKING_URI": mlflow_uri, "MLFLOW_TIMEOUT_SECONDS": "20", "EXPERIMENT_NAME": "faults",
        # Tracking costs two MLflow client processes per run: only the cases about it turn it on.
        "TRACKING": "false",
    }
    return Case(env=env, aws=aws, sfn=sfn, tmp=tmp, run_id=run_id, token=token, table=table, bucket=bucket)


def cloudwatch_matches(pattern: str, line: str) -> bool:
    """CloudWatch Logs' filter pattern for unstructured events, as runbook 001 uses it:
    ``A OR B``, each side space-separated terms that must all appear, case-sensitive, each a
    whole word (delimited by non-alphanumerics)."""
    def term(word: str) -> bool:
        return re.search(rf"(?<![A-Za-z0-9]){re.escape(word)}(?![A-Za-z0-9])", line) is not None

    return any(all(term(w) for w in side.split()) for side in pattern.split(" OR "))


def mlflow_run(uri: str, mlflow_run_id: str) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(f"{uri}/api/2.0/mlflow/runs/get?run_id={mlflow_run_id}", timeout=10) as response:
        return json.loads(response.read())["run"]


def mlflow_tags(run: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}
