"""Choose each capability's adapter from the settings: AWS where configured, local otherwise."""

from __future__ import annotations

from dataclasses import dataclass

from .artifacts.base import ArtifactStore
from .artifacts.local import LocalArtifactStore
from .heartbeat.base import NullOrchestrator, Orchestrator
from .settings import Settings
from .status.base import StatusStore
from .status.local import LocalStatusStore
from .tracking.base import NullTracker, Tracker


@dataclass(frozen=True)
class Adapters:
    status: StatusStore
    artifacts: ArtifactStore
    tracker: Tracker
    orchestrator: Orchestrator


def status_store(settings: Settings) -> StatusStore:
    return LocalStatusStore(settings.runs_dir)


def build(settings: Settings) -> Adapters:
    return Adapters(
        status=status_store(settings),
        artifacts=LocalArtifactStore(),
        tracker=NullTracker(),
        orchestrator=NullOrchestrator(),
    )
