"""Shared fixtures. Capability-specific fixtures live in tests/fixtures/ and are
registered here as plugins."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest_plugins: list[str] = ["tests.fixtures.aws", "tests.fixtures.mlflow_server"]


@pytest.fixture
def run_env(tmp_path: Path) -> dict[str, str]:
    """A clean environment for a runner subprocess: bundled data, results under tmp_path."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        RUNS_DIR=str(tmp_path / "runs"),
        DATA_DIR=str(ROOT / "data"),
        STRATEGIES_DIR=str(ROOT / "strategies"),
        CONFIGS_DIR=str(ROOT / "configs"),
        LOG_FORMAT="json",
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",  # the embedded default, kept out of the repo
    )
    return env


def runner(env: dict[str, str], *args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``strategy-runner`` as its own process, the way a container would."""
    env = {k: v for k, v in env.items() if v != ""}
    return subprocess.run(
        [sys.executable, "-m", "strategy_runner", *args] if args else [sys.executable, "-m", "strategy_runner", "backtest"],
        env=env, cwd=cwd or ROOT, capture_output=True, text=True, timeout=timeout,
    )
