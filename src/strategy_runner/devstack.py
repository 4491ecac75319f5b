"""``python -m strategy_runner.devstack``: the one-shot init of the local compose stack.

Creates the workflow-state table (with the GSIs the runbooks query) and the results bucket
named by DYNAMODB_TABLE and RESULTS_BUCKET, at AWS_ENDPOINT_URL (the emulator). Running it
again changes nothing, so `docker compose up` can run it every time.
"""

from __future__ import annotations

import sys

from . import aws
from .errors import RunnerError, ValidationError
from .settings import Settings, load_settings
from .status.dynamodb import create_table


def create_bucket(client, name: str, region: str) -> None:
    """The bucket, unless it is already ours (us-east-1 takes no location constraint)."""
    extra = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    try:
        client.create_bucket(Bucket=name, **extra)
    except Exception as exc:
        if aws.error_code(exc) != "BucketAlreadyOwnedByYou":
            raise


def init(settings: Settings) -> list[str]:
    """Create what the runner's AWS adapters expect; returns what now exists."""
    missing = [var for var, value in (("DYNAMODB_TABLE", settings.dynamodb_table),
                                      ("RESULTS_BUCKET", settings.results_bucket)) if not value]
    if missing:
        raise ValidationError(f"{' and '.join(missing)} must be set: the stack init creates them")
    create_table(aws.client(settings, "dynamodb"), settings.dynamodb_table, settings.dynamodb_key)
    create_bucket(aws.client(settings, "s3"), settings.results_bucket, settings.aws_region)
    return [f"dynamodb table {settings.dynamodb_table}", f"s3 bucket {settings.results_bucket}"]


def main() -> int:
    try:
        for made in init(load_settings()):
            print(f"ready: {made}")
    except RunnerError as exc:
        print(f"devstack: {exc.error_name}: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
