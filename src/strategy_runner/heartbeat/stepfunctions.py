"""Step Functions task token: SendTaskHeartbeat, SendTaskSuccess, SendTaskFailure.

A heartbeat answered with TaskTimedOut, TaskDoesNotExist or InvalidToken means the
orchestrator has given up on this task: that becomes ``errors.Cancelled`` and the
supervisor stops the backtest and writes CANCELLED.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ..aws import error_code
from ..errors import Cancelled
from ..logs import redact

GIVEN_UP = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})
#: SendTaskFailure limits (API reference): error 256 characters, cause 32,768.
MAX_ERROR = 256
MAX_CAUSE = 32768
#: State output limit; the runner's output is a few hundred bytes.
MAX_OUTPUT = 256 * 1024


def _finite(value: Any) -> Any:
    """JSON has no NaN/Infinity; Step Functions rejects them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class StepFunctionsOrchestrator:
    def __init__(self, client: Any, task_token: str):
        self.client = client
        self.task_token = task_token

    def heartbeat(self) -> None:
        try:
            self.client.send_task_heartbeat(taskToken=self.task_token)
        except Exception as exc:
            if error_code(exc) in GIVEN_UP:
                raise Cancelled(f"Step Functions answered the heartbeat with {error_code(exc)}: "
                                "the orchestrator gave up on this task") from exc
            raise

    def succeed(self, output: dict[str, Any]) -> None:
        body = json.dumps(redact(_finite(output)), allow_nan=False, default=str)
        if len(body.encode()) > MAX_OUTPUT:
            raise ValueError(f"task output is {len(body.encode())} bytes, over the 256 KB limit")
        self.client.send_task_success(taskToken=self.task_token, output=body)

    def fail(self, error: str, cause: str) -> None:
        self.client.send_task_failure(taskToken=self.task_token, error=error[:MAX_ERROR],
                                      cause=redact(cause)[:MAX_CAUSE])
