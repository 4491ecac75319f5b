"""Who runs this attempt: the owner written on the status item, and the image."""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from functools import lru_cache
from typing import Any

from .settings import Settings


@lru_cache(maxsize=4)
def ecs_task_metadata(uri: str | None) -> dict[str, Any]:
    """The ECS task metadata (v4 ``/task``), or {} off ECS. One short attempt, never fatal."""
    if not uri:
        return {}
    try:
        with urllib.request.urlopen(f"{uri}/task", timeout=1.0) as response:  # noqa: S310 - ECS-local
            return json.loads(response.read())
    except (OSError, ValueError):
        return {}


def owner(settings: Settings) -> str:
    """The ECS task ARN when there is one, else host:pid (unique per attempt)."""
    arn = ecs_task_metadata(settings.ecs_metadata_uri).get("TaskARN")
    return arn or f"{socket.gethostname()}:{os.getpid()}"


def image(settings: Settings) -> str:
    parts = [settings.image_version, settings.image_revision]
    return "@".join(p for p in parts if p) or "local"


def owner_gone(settings: Settings, holder: str, started_at: str | None = None) -> bool:
    """Is the attempt named ``holder`` (an item's owner) shown to be dead?

    Only what can be proved counts; anything unknown is alive (its lease decides):
    - ``host:pid`` on this host: no such process, a zombie, or a process that started after
      the attempt did (the pid was reused);
    - an ECS task ARN: ECS reports the task STOPPED, or no longer knows it.
    """
    host, _, pid = holder.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        return _pid_gone(int(pid), started_at)
    if holder.startswith("arn:aws:ecs:") and ":task/" in holder:
        return _ecs_task_gone(settings, holder)
    return False


def _pid_gone(pid: int, started_at: str | None) -> bool:
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return True
        if started_at:
            from datetime import datetime

            started = datetime.fromisoformat(started_at.replace("Z", "+00:00")).timestamp()
            return proc.create_time() > started + 1  # a newer process under a reused pid
        return False
    except psutil.NoSuchProcess:
        return True
    except (psutil.Error, ValueError):
        return False


def _ecs_task_gone(settings: Settings, task_arn: str) -> bool:
    # arn:aws:ecs:<region>:<account>:task/<cluster>/<task id>
    parts = task_arn.split(":task/", 1)[1].split("/")
    if len(parts) != 2:
        return False
    try:
        from . import aws

        answer = aws.client(settings, "ecs").describe_tasks(cluster=parts[0], tasks=[task_arn])
    except Exception:  # noqa: BLE001 - cannot tell: the lease decides
        return False
    tasks = answer.get("tasks") or []
    if tasks:
        return tasks[0].get("lastStatus") in ("STOPPED", "DELETED", "DEPROVISIONING", "STOPPING")
    return any(f.get("reason") == "MISSING" for f in answer.get("failures") or [])
