"""The supervisor's entry points (kept here for callers of ``strategy_runner.runner``);
the phases live in ``strategy_runner.supervisor``."""

from __future__ import annotations

from .supervisor import (  # noqa: F401 - re-exported
    HEADLINE_OUTPUT,
    STOP_GRACE_SECONDS,
    backtest,
    callback_output,
    fail_before_start,
    refuse_invalid_run_id,
)
