"""identity.owner_gone: only a provably dead owner lets a claim skip the lease."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from strategy_runner import identity
from strategy_runner.settings import load_settings

TASK = "arn:aws:ecs:us-east-1:123456789012:task/tradai-dev/0123abcd"


def test_a_live_local_process_is_not_gone():
    assert not identity.owner_gone(load_settings(), f"{socket.gethostname()}:{__import__('os').getpid()}")


def test_an_exited_local_process_is_gone():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert identity.owner_gone(load_settings(), f"{socket.gethostname()}:{proc.pid}")


def test_a_zombie_is_gone():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    import time

    time.sleep(1.0)  # exited, not yet waited for
    assert identity.owner_gone(load_settings(), f"{socket.gethostname()}:{proc.pid}")
    proc.wait()


def test_another_hosts_process_is_never_presumed_gone():
    assert not identity.owner_gone(load_settings(), "some-other-host:1")


@pytest.fixture
def ecs(monkeypatch):
    """A stand-in ECS endpoint answering DescribeTasks with the status the test sets."""
    state = {"lastStatus": "STOPPED", "calls": []}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_):
            pass

        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state["calls"].append((self.headers.get("X-Amz-Target"), body))
            tasks = [{"taskArn": TASK, "lastStatus": state["lastStatus"]}] if state["lastStatus"] else []
            failures = [] if state["lastStatus"] else [{"arn": TASK, "reason": "MISSING"}]
            data = json.dumps({"tasks": tasks, "failures": failures}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for name, value in {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{server.server_address[1]}",
                        "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    yield state
    server.shutdown()


@pytest.mark.parametrize(("status", "gone"), [("STOPPED", True), ("DEPROVISIONING", True), (None, True),
                                              ("RUNNING", False), ("PENDING", False)])
def test_an_ecs_owner_is_gone_only_when_ecs_says_so(ecs, status, gone):
    ecs["lastStatus"] = status
    assert identity.owner_gone(load_settings(), TASK) is gone
    target, body = ecs["calls"][-1]
    assert target.endswith("DescribeTasks") and body == {"cluster": "tradai-dev", "tasks": [TASK]}


def test_an_unreachable_ecs_means_alive(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    assert identity.owner_gone(load_settings(), TASK) is False
