"""The services a tracked benchmark run talks to, each a real server process on loopback:
moto's server (DynamoDB, S3) and ``mlflow server`` (sqlite store, proxied artifacts)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from strategy_runner.settings import child_environment  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _server(cmd: list[str], health: str, root: Path, name: str, env: dict[str, str]) -> Iterator[None]:
    """``cmd`` in its own process group until ``health`` answers 200; stopped with the group."""
    log = open(root / f"{name}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(health, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start: {(root / f'{name}.log').read_text()[-2000:]}")
            time.sleep(0.25)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@contextlib.contextmanager
def mlflow_server(root: Path) -> Iterator[str]:
    """A real ``mlflow server`` on a free loopback port; yields its URI."""
    port = free_port()
    env = child_environment({"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"},
                            drop=("MLFLOW_TRACKING_URI",))
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
           "--serve-artifacts", "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1",
           "--port", str(port), "--workers", "1"]
    uri = f"http://127.0.0.1:{port}"
    with _server(cmd, f"{uri}/health", root, "mlflow-server", env):
        yield uri


@contextlib.contextmanager
def moto_server(root: Path) -> Iterator[str]:
    """moto's server (``python -m moto.server``) on a free loopback port; yields its endpoint."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with _server([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                 f"{url}/moto-api/", root, "moto-server", child_environment({})):
        yield url


def aws_env(endpoint: str, table: str, bucket: str) -> dict[str, str]:
    """A runner's environment for the moto server, with the table and bucket created."""
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "DYNAMODB_TABLE": table,
           "RESULTS_BUCKET": bucket}
    subprocess.run([sys.executable, "-m", "strategy_runner.devstack"], env=child_environment(env), check=True,
                   capture_output=True, timeout=120)
    return env
