"""Status items in the workflow-state DynamoDB table (runbook 000).

Every transition is ONE conditional UpdateItem whose ConditionExpression is the
``lifecycle`` rule for that move. When the condition fails, DynamoDB hands back the item
as it was (``ReturnValuesOnConditionCheckFailure=ALL_OLD``) and ``lifecycle`` decides,
from that same item, whether it was an idempotent replay (no-op), a completed run to
report, or a real conflict. Nothing is read first, so there is no read-then-write race.

Table: partition key ``job_id`` (DYNAMODB_KEY) = RUN_ID; GSIs ``status-created_at-index``
(status, created_at) and ``trace_id-index`` (trace_id). Numbers are stored as Decimal
(DynamoDB has no float) and come back as int or float. A field set to None is removed.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from ..aws import describe, error_code, is_permanent
from ..errors import StatusStoreError, StatusStoreUnavailable
from ..lifecycle import ClaimKind, Decision, Status, claim_kind, finish_decision, sources
from .base import Claim, TransitionRefused, cap_fields, iso_ago, now_iso

STATUS_INDEX = "status-created_at-index"
TRACE_INDEX = "trace_id-index"
#: A failed condition could only disagree with lifecycle if the item changed in between.
_ATTEMPTS = 3

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_dynamo(value: Any) -> Any:
    """Python -> what boto3 can serialise: floats as Decimal, non-finite floats as None."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, int, Decimal)):
        return value
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): to_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_dynamo(v) for v in value]
    return str(value)


def from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, set)):
        return [from_dynamo(v) for v in value]
    return value


def _item(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    if not raw:
        return None
    return {k: from_dynamo(_deserializer.deserialize(v)) for k, v in raw.items()}


class _Update:
    """Builds one UpdateExpression + ConditionExpression with placeholders for every name."""

    def __init__(self, fields: dict[str, Any] | None = None) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self.sets: list[str] = []
        self.removes: list[str] = []
        for attr, value in cap_fields(fields or {}).items():
            if attr == "trace_id" and value is not None:
                # Written once: the trace_id the backend or workflow put there is kept.
                self.set_expr(attr, f"if_not_exists({self.name(attr)}, {self.value(value)})")
            else:
                self.set(attr, value)

    @classmethod
    def for_write(cls, run_id: str, fields: dict[str, Any], now: str) -> _Update:
        """The caller's fields, the run_id, and created_at on first write."""
        u = cls(fields)
        u.set("run_id", run_id)
        u.set_expr("created_at", f"if_not_exists({u.name('created_at')}, {u.value(now)})")
        return u

    def name(self, attr: str) -> str:
        for placeholder, existing in self.names.items():
            if existing == attr:
                return placeholder
        placeholder = f"#n{len(self.names)}"
        self.names[placeholder] = attr
        return placeholder

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = _serializer.serialize(to_dynamo(value))
        return placeholder

    def set(self, attr: str, value: Any) -> None:
        if value is None:
            self.removes.append(self.name(attr))
        else:
            self.sets.append(f"{self.name(attr)} = {self.value(value)}")

    def set_expr(self, attr: str, expr: str) -> None:
        self.sets.append(f"{self.name(attr)} = {expr}")

    def remove(self, attr: str) -> None:
        self.removes.append(self.name(attr))

    def request(self, condition: str) -> dict[str, Any]:
        parts = []
        if self.sets:
            parts.append("SET " + ", ".join(self.sets))
        if self.removes:
            parts.append("REMOVE " + ", ".join(self.removes))
        request = {
            "UpdateExpression": " ".join(parts),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": self.names,
        }
        if self.values:
            request["ExpressionAttributeValues"] = self.values
        return request

    # --- condition pieces ---------------------------------------------------------------
    def blank(self, attr: str) -> str:
        """The attribute is absent, null or empty (lifecycle's 'no owner')."""
        n = self.name(attr)
        return f"(attribute_not_exists({n}) OR attribute_type({n}, {self.value('NULL')}) OR {n} = {self.value('')})"

    def status_is(self, status: Status | None) -> str:
        if status is None:  # no item yet (or an item without a status)
            return f"attribute_not_exists({self.name('status')})"
        return f"{self.name('status')} = {self.value(status.value)}"


class DynamoDBStatusStore:
    def __init__(self, client: Any, table: str, key: str = "job_id"):
        self.client = client
        self.table = table
        self.key = key

    def _key(self, run_id: str) -> dict[str, Any]:
        return {self.key: {"S": run_id}}

    def _update(self, run_id: str, update: _Update, condition: str) -> tuple[bool, dict[str, Any] | None]:
        """(applied, item): the item after the write, or the item that failed the condition."""
        try:
            response = self.client.update_item(
                TableName=self.table, Key=self._key(run_id), ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD", **update.request(condition),
            )
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            return False, _item(getattr(exc, "response", {}).get("Item"))
        except Exception as exc:  # noqa: BLE001 - named by cause below
            raise self.store_error("update", run_id, exc) from exc
        return True, _item(response.get("Attributes"))

    def store_error(self, action: str, run_id: str, exc: Exception) -> StatusStoreError:
        """A botocore failure (after its retries) as the runner's error, permanent or transient."""
        where = f"DynamoDB table {self.table!r} (key {self.key!r})"
        if is_permanent(exc):
            hint = ""
            if error_code(exc) == "ResourceNotFoundException":
                hint = " (DYNAMODB_TABLE names a table that does not exist in this region/endpoint)"
            elif error_code(exc) == "ValidationException" and "key" in str(exc).lower():
                hint = f" (DYNAMODB_KEY={self.key!r} is not the table's partition key)"
            return StatusStoreError(f"{action} of run {run_id} in the {where} was refused: {describe(exc)}{hint}")
        return StatusStoreUnavailable(f"{action} of run {run_id} in the {where} failed after retries: {describe(exc)}")

    # --- the protocol -------------------------------------------------------------------
    def get(self, run_id: str) -> dict[str, Any] | None:
        try:
            response = self.client.get_item(TableName=self.table, Key=self._key(run_id), ConsistentRead=True)
        except Exception as exc:  # noqa: BLE001
            raise self.store_error("read", run_id, exc) from exc
        return _item(response.get("Item"))

    def claim(self, run_id: str, *, owner: str, lease_seconds: float, fields: dict[str, Any],
              gone_owner: str | None = None) -> Claim:
        for _ in range(_ATTEMPTS):
            stale_before = iso_ago(lease_seconds)
            now = now_iso()
            u = _Update.for_write(run_id, fields, now)
            for attr, value in (("status", Status.RUNNING.value), ("owner", owner), ("started_at", now),
                                ("updated_at", now), ("heartbeat_at", now), ("retryable", False)):
                u.set(attr, value)
            attempt = u.name("attempt")
            u.set_expr("attempt", f"if_not_exists({attempt}, {u.value(0)}) + {u.value(1)}")
            for stale in ("completed_at", "error_type", "error_message"):
                u.remove(stale)
            # lifecycle.claim_kind, as a condition: no item, PENDING, a RUNNING item that
            # has no owner / is ours / has a stale heartbeat, or a retryable FAILED one.
            hb, started = u.name("heartbeat_at"), u.name("started_at")
            stale = u.value(stale_before)
            heartbeat_stale = (
                f"({hb} < {stale} OR ({u.blank('heartbeat_at')} AND ({u.blank('started_at')} OR {started} < {stale})))"
            )
            owners = f"{u.name('owner')} = {u.value(owner)}"
            if gone_owner:  # an owner shown to be dead (supervisor/claim.py) is as good as stale
                owners += f" OR {u.name('owner')} = {u.value(gone_owner)}"
            condition = " OR ".join([
                u.status_is(None),
                u.status_is(Status.PENDING),
                f"({u.status_is(Status.RUNNING)} AND ({u.blank('owner')} OR {owners}"
                f" OR {heartbeat_stale}))",
                f"({u.status_is(Status.FAILED)} AND {u.name('retryable')} = {u.value(True)})",
            ])
            applied, item = self._update(run_id, u, condition)
            if applied:
                return Claim(ClaimKind.CLAIMED, item or {})
            kind = claim_kind(item, owner=owner, stale_before=stale_before, gone_owner=gone_owner)
            if kind != ClaimKind.CLAIMED:
                return Claim(kind, item or {})
        raise RuntimeError(f"run {run_id}: the claim condition kept failing on an item lifecycle allows: {item}")

    def finish(self, run_id: str, status: Status, *, owner: str, fields: dict[str, Any]) -> dict[str, Any]:
        status = Status(status)
        for _ in range(_ATTEMPTS):
            now = now_iso()
            u = _Update.for_write(run_id, fields, now)
            u.set("status", status.value)
            u.set("updated_at", now)
            u.set("completed_at", now)
            # lifecycle.finish_decision: any source the table allows; a RUNNING source
            # only when it has no owner or it is ours.
            allowed = []
            for source in sorted(sources(status), key=lambda s: s or ""):
                if source == Status.RUNNING:
                    allowed.append(f"({u.status_is(source)} AND ({u.blank('owner')} OR "
                                   f"{u.name('owner')} = {u.value(owner)}))")
                else:
                    allowed.append(u.status_is(source))
            applied, item = self._update(run_id, u, " OR ".join(allowed))
            if applied:
                return item or {}
            decision = finish_decision(item, status, owner=owner)
            if decision == Decision.NOOP:
                return item or {}
            if decision == Decision.REFUSE:
                raise TransitionRefused(run_id, status, item)
        raise RuntimeError(f"run {run_id}: the finish condition kept failing on an item lifecycle allows: {item}")

    def touch(self, run_id: str, *, owner: str, fields: dict[str, Any]) -> bool:
        u = _Update(fields)
        u.set("updated_at", now_iso())
        condition = f"{u.status_is(Status.RUNNING)} AND {u.name('owner')} = {u.value(owner)}"
        applied, _ = self._update(run_id, u, condition)
        return applied

    def expire(self, run_id: str, *, stale_before: str, fields: dict[str, Any]) -> dict[str, Any] | None:
        """status/base.py: RUNNING -> FAILED only while base.lease_timestamp(item) < stale_before."""
        u = _Update(fields)
        now = now_iso()
        u.set("status", Status.FAILED.value)
        u.set("updated_at", now)
        u.set("completed_at", now)
        # lease_timestamp as a condition: the first non-blank of the chain is older than the
        # lease, or all are blank.
        chain = ("heartbeat_at", "started_at", "updated_at", "created_at")
        stale = u.value(stale_before)
        alternatives = [
            "(" + " AND ".join([*(u.blank(a) for a in chain[:i]), f"NOT {u.blank(attr)}", f"{u.name(attr)} < {stale}"]) + ")"
            for i, attr in enumerate(chain)
        ]
        alternatives.append("(" + " AND ".join(u.blank(a) for a in chain) + ")")
        applied, item = self._update(run_id, u, f"{u.status_is(Status.RUNNING)} AND ({' OR '.join(alternatives)})")
        return item if applied else None

    def query(
        self, *, status: Status | None = None, since: str | None = None, trace_id: str | None = None
    ) -> list[dict[str, Any]]:
        if trace_id is not None:
            items = self._pages(IndexName=TRACE_INDEX, KeyConditionExpression="#t = :t",
                                ExpressionAttributeNames={"#t": "trace_id"},
                                ExpressionAttributeValues={":t": {"S": trace_id}})
        elif status is not None:
            names, values = {"#s": "status"}, {":s": {"S": Status(status).value}}
            condition = "#s = :s"
            if since is not None:
                names["#c"], values[":c"] = "created_at", {"S": since}
                condition += " AND #c >= :c"
            items = self._pages(IndexName=STATUS_INDEX, KeyConditionExpression=condition,
                                ExpressionAttributeNames=names, ExpressionAttributeValues=values,
                                ScanIndexForward=False)
        else:
            items = [i for page in self.client.get_paginator("scan").paginate(TableName=self.table)
                     for i in (_item(r) for r in page.get("Items", [])) if i]
        if status is not None:
            items = [i for i in items if i.get("status") == status]
        if since is not None:
            items = [i for i in items if i.get("created_at", "") >= since]
        return sorted(items, key=lambda i: i.get("created_at", ""), reverse=True)

    def _pages(self, **query: Any) -> list[dict[str, Any]]:
        pages = self.client.get_paginator("query").paginate(TableName=self.table, **query)
        return [i for page in pages for i in (_item(r) for r in page.get("Items", [])) if i]


def create_table(client: Any, name: str, key: str = "job_id") -> None:
    """The workflow-state table with both GSIs the runbooks query (tests, compose init)."""
    def gsi(index: str, *keys: tuple[str, str]) -> dict[str, Any]:
        return {"IndexName": index, "KeySchema": [{"AttributeName": a, "KeyType": t} for a, t in keys],
                "Projection": {"ProjectionType": "ALL"}}

    try:
        client.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"}
                                  for a in dict.fromkeys((key, "status", "created_at", "trace_id"))],
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                gsi(STATUS_INDEX, ("status", "HASH"), ("created_at", "RANGE")),
                gsi(TRACE_INDEX, ("trace_id", "HASH")),
            ],
        )
    except Exception as exc:
        if error_code(exc) != "ResourceInUseException":  # already there
            raise
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
