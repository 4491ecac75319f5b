"""One attempt at a run: what the phases (claim, work, finish) share."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

from .. import identity, logs
from ..adapters import Adapters
from ..cache.hook import CacheHook
from ..errors import RunnerError
from ..guard.memory import MemoryWatch
from ..progress import ProgressReporter
from ..settings import Settings

log = logs.get_logger("strategy_runner.runner")


class CallbackOnce:
    """The orchestrator, with at most one callback (SendTaskSuccess or SendTaskFailure) per
    attempt: whatever path reaches a second one, the first stands."""

    def __init__(self, orchestrator: Any):
        self._orchestrator = orchestrator
        self.sent: str | None = None

    def heartbeat(self) -> None:
        self._orchestrator.heartbeat()

    def succeed(self, output: dict[str, Any]) -> None:
        if self._claim("success"):
            self._orchestrator.succeed(output)

    def fail(self, error: str, cause: str) -> None:
        if self._claim(error):
            self._orchestrator.fail(error, cause)

    def _claim(self, what: str) -> bool:
        if self.sent is not None:
            log.warning("callback already sent; not sending another", sent=self.sent, suppressed=what)
            return False
        self.sent = what
        return True


class Attempt:
    def __init__(self, settings: Settings, adapters: Adapters, warm: Any = None):
        self.settings = settings
        self.warm = warm  # supervisor/warm.WarmWorker: the first worker, importing since start-up
        self.callback = CallbackOnce(adapters.orchestrator)
        self.adapters = dataclasses.replace(adapters, orchestrator=self.callback)
        self.owner = identity.owner(settings)
        self.started = time.monotonic()
        self.stop_reason: RunnerError | None = None  # set by a signal, the orchestrator or a lost lease
        self.stopped = threading.Event()
        self.mlflow_run_id: str | None = None
        self.peak_memory_mb: float | None = None
        self.memory: MemoryWatch | None = None  # the runtime guard, set up by the memory pre-flight
        self.progress: dict[str, Any] = {}
        self.cache = CacheHook(settings)
        self.progress_reporter = ProgressReporter()

    @property
    def run_dir(self):  # noqa: ANN201 - a Path; settings may change (trace_id adopted at the claim)
        return self.settings.run_dir

    def request_stop(self, reason: RunnerError) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            log.warning("stopping the backtest", reason=str(reason), error_type=reason.error_name)
        self.stopped.set()


def safe(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a side effect that must not stop the lifecycle from finishing."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001
        log.error("side effect failed", call=getattr(fn, "__qualname__", str(fn)), error=str(exc))
        return None
