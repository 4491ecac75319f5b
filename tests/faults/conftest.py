from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest

from tests.fixtures.sfn_recorder import sfn  # noqa: F401 - the session's recording endpoint

from .stack import Case, setup_case


@pytest.fixture
def case(aws, sfn, mlflow_server, run_env: dict[str, str], tmp_path: Path):  # noqa: F811
    c: Case = setup_case(aws, sfn, mlflow_server.uri, run_env, tmp_path)
    yield c
    for proc in c.procs:  # never leave a runner or its worker behind
        if proc.poll() is None:
            try:
                for child in psutil.Process(proc.pid).children(recursive=True):
                    child.kill()
            except psutil.Error:
                pass
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
