"""The sweep on Step Functions: items.json to S3, one execution of the sweep workflow
(deploy/stepfunctions/backtest-sweep.asl.json), and the items' outcomes read back by key.

Every item's RUN_ID is known from items.json, so status and gather read the status table by
key (GetItem per item), never by scan.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from .spec import SweepItem, SweepSpec

ITEMS = "items.json"


def items_key(prefix: str, sweep_id: str) -> str:
    return f"{prefix.strip('/')}/sweeps/{sweep_id}/{ITEMS}".lstrip("/")


def save_items_locally(spec: SweepSpec, runs_dir: Path) -> Path:
    path = Path(runs_dir) / spec.sweep_id / ITEMS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([i.document() for i in spec.items], indent=1))
    return path


def start(spec: SweepSpec, *, s3: Any, sfn: Any, bucket: str, prefix: str, state_machine_arn: str) -> dict[str, str]:
    """Upload items.json and start one execution; what was started."""
    key = items_key(prefix, spec.sweep_id)
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps([i.document() for i in spec.items]).encode(),
                  ContentType="application/json")
    name = f"{spec.sweep_id}-{datetime.now(UTC):%Y%m%dT%H%M%S}"[:80]
    arn = sfn.start_execution(stateMachineArn=state_machine_arn, name=name,
                              input=json.dumps({"sweep_id": spec.sweep_id, "items": {"bucket": bucket, "key": key}}))
    return {"execution_arn": arn["executionArn"], "items": f"s3://{bucket}/{key}"}


def load_items(sweep_id: str, *, runs_dir: Path, s3: Any | None, bucket: str | None, prefix: str) -> list[SweepItem]:
    """The sweep's items: runs/<id>/items.json, else s3://<results>/<prefix>/sweeps/<id>/items.json."""
    local = Path(runs_dir) / sweep_id / ITEMS
    if local.is_file():
        docs = json.loads(local.read_text())
    elif s3 is not None and bucket:
        key = items_key(prefix, sweep_id)
        try:
            docs = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except Exception as exc:  # noqa: BLE001 - named below with both places looked
            raise ValidationError(f"no sweep {sweep_id!r}: neither {local} nor s3://{bucket}/{key} ({exc})") from None
    else:
        raise ValidationError(f"no sweep {sweep_id!r}: {local} does not exist (set RESULTS_BUCKET for an AWS sweep)")
    return [SweepItem.from_document(doc) for doc in docs]
