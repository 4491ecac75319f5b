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
