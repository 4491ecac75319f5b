"""Choose each capability's adapter from the settings: AWS where configured, local otherwise."""

from __future__ import annotations

from dataclasses import dataclass

from .artifacts.base import ArtifactStore
from .artifacts.local import LocalArtifactStore
from .heartbeat.base import NullOrchestrator, Orchestrator
from .settings import Settings
from .status.base import StatusStore
from .status.local import LocalStatusStore
from .tracking.base import NoTracker, Tracker


@dataclass(frozen=True)
class Adapters:
    status: StatusStore
    artifacts: ArtifactStore
    tracker: Tracker
    orchestrator: Orchestrator


def status_store(settings: Settings) -> StatusStore:
    if settings.dynamodb_table:
        from . import aws
        from .status.dynamodb import DynamoDBStatusStore

        return DynamoDBStatusStore(aws.client(settings, "dynamodb"), settings.dynamodb_table, settings.dynamodb_key)
    return LocalStatusStore(settings.runs_dir)


def artifact_store(settings: Settings) -> ArtifactStore:
    if settings.results_bucket:
        from . import aws
        from .artifacts.s3 import S3ArtifactStore

        return S3ArtifactStore(aws.client(settings, "s3"), settings.results_bucket, settings.results_prefix)
    return LocalArtifactStore()


def orchestrator(settings: Settings) -> Orchestrator:
    if settings.task_token:
        from . import aws
        from .heartbeat.stepfunctions import StepFunctionsOrchestrator

        return StepFunctionsOrchestrator(aws.client(settings, "stepfunctions"), settings.task_token)
    return NullOrchestrator()


def tracker(settings: Settings) -> Tracker:
    """MLflow: MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlflow.db; nothing with TRACKING=false."""
    if not settings.tracking:
        return NoTracker()
    from .tracking.mlflow import MlflowTracker, tracking_uri

    return MlflowTracker(settings, tracking_uri(settings))


def build(settings: Settings) -> Adapters:
    return Adapters(
        status=status_store(settings),
        artifacts=artifact_store(settings),
        tracker=tracker(settings),
        orchestrator=orchestrator(settings),
    )
