"""Helpers for the fault-injection tests: test strategies written into a tmp STRATEGIES_DIR,
and a runner subprocess the test can signal and watch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

# A small, real strategy (no TA-Lib) with a hook where each fault goes.
TEMPLATE = '''
import os, signal, time
import numpy as np
from pandas import DataFrame
from freqtrade.strategy import IStrategy

_HOG = []


class {name}(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "5m"
    minimal_roi = {{"0": 0.02}}
    stoploss = -0.05
    startup_candle_count = 20

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
{indicators}
        dataframe["ma"] = dataframe["close"].rolling(20).mean()
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
{entry}
        dataframe.loc[dataframe["close"] > dataframe["ma"], "enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe.loc[dataframe["close"] < dataframe["ma"], "exit_long"] = 1
        return dataframe
'''

FAULTS = {
    # Grows by 25 MiB (pages touched) every 20 ms up to 3 GiB, then waits: only a guard stops it.
    "MemoryHog": ("for _ in range(120):\n    _HOG.append(np.ones(25 * 2**20 // 8))\n    time.sleep(0.02)\n"
                  "time.sleep(120)", ""),
    "Sleepy": ("for _ in range(1200):\n    time.sleep(0.1)", ""),
    # Ignores SIGTERM and SIGINT: only the supervisor's SIGKILL after the grace ends it.
    "Stubborn": ("signal.signal(signal.SIGTERM, signal.SIG_IGN)\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                 "for _ in range(1200):\n    time.sleep(0.1)", ""),
    "Raises": ("", "raise ValueError('strategy bug: the entry rule divided by zero')"),
    "ExitsZero": ("os._exit(0)", ""),
    "Plain": ("", ""),
}


def write_strategies(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, (indicators, entry) in FAULTS.items():
        body = TEMPLATE.format(name=name, indicators=textwrap.indent(indicators or "pass", " " * 8),
                               entry=textwrap.indent(entry or "pass", " " * 8))
        (directory / f"{name}.py").write_text(body)
    return directory


@dataclass
class Run:
    proc: subprocess.Popen
    runs_dir: Path
    run_id: str
    cwd: Path

    def stderr(self) -> str:
        return (self.cwd / f"{self.run_id}.stderr").read_text()

    def stdout(self) -> str:
        return (self.cwd / f"{self.run_id}.stdout").read_text()

    @property
    def run_dir(self) -> Path:
        return self.runs_dir / self.run_id

    def item(self) -> dict[str, Any]:
        return json.loads((self.runs_dir / ".status" / f"{self.run_id}.json").read_text())

    def progress(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.run_dir / ".worker" / "progress.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def wait_for_phase(self, *phases: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            progress = self.progress()
            if progress and progress.get("phase") in phases:
                return progress
            if self.proc.poll() is not None:
                raise AssertionError(f"the runner ended ({self.proc.returncode}) before phase {phases}: "
                                     f"{self.stderr()[-3000:]}")
            time.sleep(0.02)
        raise AssertionError(f"phase {phases} not reached in {timeout} s (last {self.progress()})")

    def worker(self) -> psutil.Process:
        children = psutil.Process(self.proc.pid).children()
        workers = [c for c in children if "strategy_runner.worker" in " ".join(c.cmdline())]
        assert workers, f"no worker under the supervisor: {children}"
        return workers[0]

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 120) -> int:
        return self.proc.wait(timeout=timeout)

    def log(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in (self.run_dir / "run.log").read_text().splitlines() if line.strip()]


def start(env: dict[str, str], cwd: Path, run_id: str, **overrides: str) -> Run:
    env = {k: v for k, v in {**env, "RUN_ID": run_id, **overrides}.items() if v != ""}
    # Files, not pipes: nobody reads a pipe while the run goes, and a full one blocks it.
    out = open(cwd / f"{run_id}.stdout", "w")  # noqa: SIM115 - the child holds it
    err = open(cwd / f"{run_id}.stderr", "w")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "strategy_runner", "backtest"], env=env, cwd=cwd,
                            stdout=out, stderr=err, text=True)
    out.close()
    err.close()
    return Run(proc, Path(env["RUNS_DIR"]), run_id, cwd)


def stop_quietly(run: Run) -> None:
    """Teardown: never leave a runner or a worker behind."""
    if run.proc.poll() is None:
        for child in psutil.Process(run.proc.pid).children(recursive=True):
            child.kill()
        os.kill(run.proc.pid, signal.SIGKILL)
        run.proc.wait()


def mlflow_run(uri: str, mlflow_run_id: str) -> dict[str, Any]:
    """The MLflow run, read over the tracking server's REST API."""
    import urllib.request

    with urllib.request.urlopen(f"{uri}/api/2.0/mlflow/runs/get?run_id={mlflow_run_id}", timeout=10) as response:
        return json.loads(response.read())["run"]


def mlflow_status(uri: str, mlflow_run_id: str) -> str:
    return mlflow_run(uri, mlflow_run_id)["info"]["status"]
