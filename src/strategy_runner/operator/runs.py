"""``strategy-runner runs``: the runbooks' status-index and trace-index queries, as a table."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import ValidationError
from ..lifecycle import Status
from ..status.base import StatusStore, now_iso

_AGO = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, now: datetime | None = None) -> str:
    """``30m`` / ``24h`` / ``7d`` ago, or an ISO date/time -> the store's fixed-width UTC timestamp."""
    raw = text.strip()
    match = _AGO.match(raw)
    if match:
        return now_iso((now or datetime.now(UTC)) - timedelta(seconds=float(match[1]) * _UNIT[match[2]]))
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            f"--since={text!r}: expected a duration like 30m, 24h or 7d, or an ISO date/time like "
            "2026-11-21 or 2026-11-21T08:00:00Z"
        ) from None
    return now_iso(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


def list_runs(store: StatusStore, *, status: str | None = None, since: str | None = None,
              trace_id: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Newest first. By trace (trace index), by status (status index), or every status in turn."""
    if trace_id is not None:
        items = store.query(trace_id=trace_id)
        items = [i for i in items if (status is None or i.get("status") == status)
                 and (since is None or i.get("created_at", "") >= since)]
    elif status is not None:
        items = store.query(status=Status(status), since=since)
    else:  # no full-table scan: one status-index query per status
        items = [i for s in Status for i in store.query(status=s, since=since)]
    items.sort(key=lambda i: i.get("created_at", ""), reverse=True)
    return items[:limit] if limit else items


COLUMNS = ("run_id", "status", "created_at", "attempt", "strategy", "pairs", "error_type", "trace_id")


def _cell(item: dict[str, Any], column: str) -> str:
    value = item.get(column)
    if column == "pairs":
        pairs = value or []
        return ",".join(pairs) if len(pairs) <= 2 else f"{pairs[0]} +{len(pairs) - 1}"
    if column == "created_at" and value:
        return str(value)[:19].replace("T", " ")
    return "-" if value in (None, "") else str(value)


def render_table(items: list[dict[str, Any]]) -> str:
    if not items:
        return "no runs match"
    rows = [[_cell(i, c) for c in COLUMNS] for i in items]
    widths = [max(len(c), *(len(r[n]) for r in rows)) for n, c in enumerate(COLUMNS)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*COLUMNS).rstrip(), *(fmt.format(*r).rstrip() for r in rows)])
