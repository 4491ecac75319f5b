"""The orchestrator protocol (Step Functions task token) and the heartbeat loop."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any, Protocol


class Orchestrator(Protocol):
    def heartbeat(self) -> None:
        """Say the task is alive. Raises errors.Cancelled when the orchestrator gave up."""

    def succeed(self, output: dict[str, Any]) -> None:
        """Report success with a small JSON output."""

    def fail(self, error: str, cause: str) -> None:
        """Report failure with an error name Retry/Catch can match."""


class NullOrchestrator:
    """No task token: nobody waits on a callback."""

    def heartbeat(self) -> None:
        pass

    def succeed(self, output: dict[str, Any]) -> None:
        pass

    def fail(self, error: str, cause: str) -> None:
        pass


class HeartbeatLoop:
    """Calls ``beat`` now and then every ``interval`` seconds on a daemon thread.

    An exception from ``beat`` is handed to ``on_error``; the loop keeps going unless
    ``on_error`` returns False.
    """

    def __init__(self, interval: float, beat: Callable[[], None], on_error: Callable[[Exception], bool]):
        self.interval = interval
        self._beat = beat
        self._on_error = on_error
        self._stop = threading.Event()
        # In a copy of the caller's context, so log lines keep run_id and trace_id.
        self._thread = threading.Thread(
            target=contextvars.copy_context().run, args=(self._run,), name="heartbeat", daemon=True
        )

    def _run(self) -> None:
        while True:
            try:
                self._beat()
            except Exception as exc:  # noqa: BLE001 - reported through on_error
                if not self._on_error(exc):
                    return
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> HeartbeatLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)
