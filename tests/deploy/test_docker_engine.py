"""The image and the compose stack for real. Needs a Docker engine: skipped where none
answers (as on the build machines); the static checks and the loopback twin
(test_compose_stack.py) cover what can be checked without one."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import uuid

import pytest

from . import checks

pytestmark = pytest.mark.docker

IMAGE = "strategy-runner:test"
SHORT_RUN = {"PAIRS": "BTC/USDT", "TIMERANGE": "20241101-20241115"}


@pytest.fixture(scope="module")
def docker_client():
    try:
        import docker

        client = docker.from_env(timeout=10)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means no usable engine
        pytest.skip(f"no Docker engine reachable ({type(exc).__name__}); the static checks cover the files")
    return client


@pytest.fixture(scope="module")
def image(docker_client) -> str:
    revision = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checks.ROOT, capture_output=True,
                              text=True).stdout.strip() or "unknown"
    subprocess.run(["docker", "build", "--platform", "linux/amd64", "-t", IMAGE,
                    "--build-arg", "IMAGE_VERSION=test", "--build-arg", f"IMAGE_REVISION={revision}", "."],
                   cwd=checks.ROOT, check=True, timeout=1800)
    return IMAGE


def test_image_runs_a_backtest_as_a_non_root_user_and_records_its_revision(docker_client, image):
    labels = docker_client.images.get(image).labels
    assert labels["org.opencontainers.image.version"] == "test"
    uid = docker_client.containers.run(image, entrypoint=["id", "-u"], remove=True).decode().strip()
    assert uid == "10001"
    logs = docker_client.containers.run(image, environment={**SHORT_RUN, "RUN_ID": "docker-run"}, remove=True)
    assert b"docker-run" in logs


def test_the_v8_command_override_is_accepted(docker_client, image):
    docker_client.containers.run(image, command=["backtest", "--config"], environment=SHORT_RUN, remove=True)


def test_sigterm_reaches_the_runner_and_ends_the_run_as_interrupted(docker_client, image):
    container = docker_client.containers.run(
        image, detach=True, environment={"TIMERANGE": "20240101-20241201", "RUN_ID": "docker-stop"})
    try:
        time.sleep(8)
        container.stop(timeout=60)  # SIGTERM, then SIGKILL after 60 s
        assert container.wait(timeout=90)["StatusCode"] == 75  # SpotInterrupted, not 137 (killed)
    finally:
        container.remove(force=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_compose_run_uses_the_stack(docker_client):
    if not shutil.which("docker") or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode:
        pytest.skip("the docker compose plugin is not installed")
    project = f"srtest{uuid.uuid4().hex[:6]}"
    env = {"MLFLOW_UI_PORT": str(_free_port()), "AWS_EMULATOR_PORT": str(_free_port())}
    compose = ["docker", "compose", "-p", project]
    run_id = f"compose-{uuid.uuid4().hex[:6]}"
    try:
        subprocess.run([*compose, "run", "--rm", "-T", "-e", f"RUN_ID={run_id}",
                        *[a for k, v in SHORT_RUN.items() for a in ("-e", f"{k}={v}")], "strategy", "backtest"],
                       cwd=checks.ROOT, env={**_host_env(), **env}, check=True, timeout=1800)
        shown = subprocess.run([*compose, "run", "--rm", "-T", "strategy", "status", run_id, "--json"],
                               cwd=checks.ROOT, env={**_host_env(), **env}, check=True, timeout=300,
                               capture_output=True, text=True)
        view = json.loads(shown.stdout[shown.stdout.index("{"):])
        assert json.dumps(view).count(run_id) and "backtest-result.json" in shown.stdout
    finally:
        subprocess.run([*compose, "down", "-v"], cwd=checks.ROOT, env={**_host_env(), **env}, timeout=300)


def _host_env() -> dict[str, str]:
    from strategy_runner.settings import child_environment

    return child_environment({})
