"""A worker started before the claim: Freqtrade's imports (seconds of CPU, the same in plain
Freqtrade) overlap the supervisor's own start, the claim, the MLflow start and the inputs.

It holds no run until it is given one: ``go`` sends it the worker environment as it is
after the claim; ``discard`` (every way out of the supervisor) ends one that was not needed
(refused, cached, failed before the backtest). If the supervisor dies, its stdin closes
and it exits.
"""

from __future__ import annotations

import json
import subprocess
import sys

from ..settings import Settings, worker_environment
from ..worker import WARM


class WarmWorker:
    def __init__(self, settings: Settings):
        self.proc: subprocess.Popen | None = subprocess.Popen(
            [sys.executable, "-m", "strategy_runner.worker", WARM], stdin=subprocess.PIPE, text=True,
            env=worker_environment(settings))

    def go(self, env: dict[str, str]) -> subprocess.Popen | None:
        """The warm process, now running the backtest with ``env``; None once it was taken."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        try:
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(env) + "\n")
            proc.stdin.close()
        except OSError:
            pass  # it died warming up: its exit code and log tail say why
        return proc

    def discard(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
