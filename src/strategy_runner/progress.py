"""The supervisor's view of the worker's progress: a live bar on a terminal, log lines elsewhere.

The worker writes .worker/progress.json {phase, fraction} (fraction within the phase);
the supervisor samples it a few times a second and passes it here. Phases are weighted
into one overall fraction so the bar only moves forward.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from .logs import get_logger

log = get_logger("strategy_runner.progress")

#: phase -> (start, end) of its share of the whole run; roughly measured shares of wall time.
PHASES: dict[str, tuple[float, float]] = {
    "data_load": (0.0, 0.02),   # the worker is importing Freqtrade and building the spec
    "startup": (0.02, 0.05),    # strategy and exchange set up
    "dataload": (0.05, 0.25),   # candles read from disk
    "analyze": (0.25, 0.55),    # indicators and signals
    "convert": (0.55, 0.65),
    "backtest": (0.65, 1.0),    # the trade simulation loop
}
BAR_WIDTH = 30


def overall_fraction(phase: str, fraction: float) -> float | None:
    span = PHASES.get(phase)
    if span is None:
        return None
    start, end = span
    return start + (end - start) * min(max(fraction, 0.0), 1.0)


class ProgressReporter:
    """Turns progress samples into a bar (TTY) and log lines (every ``log_step`` or ``log_seconds``)."""

    def __init__(self, stream: TextIO | None = None, interactive: bool | None = None,
                 log_step: float = 0.10, log_seconds: float = 30.0):
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.log_step = log_step
        self.log_seconds = log_seconds
        self.overall = 0.0
        self.phase = ""
        self._next_log = 0.0
        self._last_log_at = time.monotonic()
        self._done = False

    def update(self, progress: dict[str, Any]) -> dict[str, Any]:
        """Report a sample; returns it with ``percent`` of the whole run (for the status item)."""
        if self._done:
            return {**progress, "percent": round(self.overall * 100, 1)}
        phase = str(progress.get("phase", ""))
        fraction = float(progress.get("fraction") or 0.0)
        overall = overall_fraction(phase, fraction)
        if overall is not None:
            self.overall = max(self.overall, overall)
        self.phase = phase
        now = time.monotonic()
        finished = phase == "backtest" and fraction >= 1.0
        if self.overall >= self._next_log or now - self._last_log_at >= self.log_seconds or finished:
            self._clear()
            log.info("progress", percent=round(self.overall * 100), phase=phase,
                     phase_percent=round(fraction * 100))
            self._next_log = (int(self.overall / self.log_step + 1e-9) + 1) * self.log_step
            self._last_log_at = now
        self._draw(phase, fraction)
        if finished:
            self._done = True
            if self.interactive:
                self.stream.write("\n")
                self.stream.flush()
        return {**progress, "percent": round(self.overall * 100, 1)}

    def bar(self, phase: str, fraction: float) -> str:
        filled = int(round(self.overall * BAR_WIDTH))
        return (f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {self.overall * 100:5.1f}%  "
                f"{phase} {fraction * 100:.0f}%")

    def _draw(self, phase: str, fraction: float) -> None:
        if self.interactive:
            self.stream.write("\r\033[K" + self.bar(phase, fraction))
            self.stream.flush()

    def _clear(self) -> None:
        if self.interactive:
            self.stream.write("\r\033[K")
            self.stream.flush()
