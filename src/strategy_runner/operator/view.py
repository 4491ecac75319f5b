"""``strategy-runner status RUN_ID``: one view of a run joined from everything that knows about it.

status item (timeline, attempts, error) + MLflow run + results listing (S3 or RUNS_DIR)
+ where the logs are (trace_id, CloudWatch group/stream from the ECS task ARN, run.log).
Each source is optional and bounded: a source that fails or is slow shows up as an
``error`` in its own section, never as a failed command.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ..artifacts.base import SUMMARY, result_files
from ..lifecycle import Status
from ..settings import Settings
from ..status.base import StatusStore, lease_timestamp
from .advice import STALE_ADVICE, classify

TIMELINE = ("created_at", "started_at", "heartbeat_at", "updated_at", "completed_at")
LISTING_LIMIT = 1000


def parse_iso(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _seconds(a: Any, b: Any) -> float | None:
    start, end = parse_iso(a), parse_iso(b)
    return round((end - start).total_seconds(), 3) if start and end else None


# --- sources -----------------------------------------------------------------------------
def timeline(item: dict[str, Any], settings: Settings, now: datetime) -> dict[str, Any]:
    out: dict[str, Any] = {k: item.get(k) for k in TIMELINE}
    status = item.get("status")
    out["queued_s"] = _seconds(item.get("created_at"), item.get("started_at"))
    end = item.get("completed_at") if status != Status.RUNNING else now.isoformat()
    out["ran_s"] = _seconds(item.get("started_at"), end)
    if status == Status.RUNNING:
        age = _seconds(lease_timestamp(item), now.isoformat())
        out["heartbeat_age_s"] = age
        out["stale"] = age is not None and age > settings.lease_seconds
    return out


def log_pointer(item: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """trace_id, the CloudWatch group/stream of the ECS task (owner), and the local run.log."""
    trace_id = item.get("trace_id")
    out: dict[str, Any] = {"trace_id": trace_id}
    run_log = settings.runs_dir / str(item.get("run_id")) / "run.log"
    out["local_run_log"] = str(run_log.resolve()) if run_log.exists() else None
    owner = str(item.get("owner") or "")
    # arn:aws:ecs:<region>:<account>:task/<cluster>/<task id>
    if owner.startswith("arn:aws:ecs:") and ":task/" in owner:
        region = owner.split(":")[3]
        task_id = owner.rsplit("/", 1)[-1]
        group, stream = settings.log_group, f"{settings.log_stream_prefix}/{task_id}"
        out["cloudwatch"] = {
            "region": region, "log_group": group, "log_stream": stream, "task_arn": owner,
            "tail": f"aws logs tail {group} --log-stream-names {stream} --region {region}",
            "by_trace": (f"aws logs filter-log-events --log-group-name {group} --region {region} "
                         f"--filter-pattern '\"{trace_id}\"'") if trace_id else None,
        }
    else:
        out["cloudwatch"] = None
        out["owner_host"] = owner or None  # host:pid of a local attempt
    return out


def _local_dir(results_uri: str | None, settings: Settings, run_id: str) -> Path:
    if results_uri and results_uri.startswith("file://"):
        return Path(unquote(urlparse(results_uri).path))
    return settings.runs_dir / run_id


def results_listing(item: dict[str, Any], settings: Settings, s3_client: Any = None) -> dict[str, Any]:
    """The files of the run's results: an S3 listing of results_uri, or the local run directory."""
    run_id = str(item.get("run_id"))
    uri = item.get("results_uri")
    out: dict[str, Any] = {"uri": uri, "files": [], "error": None}
    if uri and uri.startswith("s3://"):
        try:
            out["files"] = _s3_files(uri, settings, s3_client)
        except Exception as exc:  # noqa: BLE001 - shown, not fatal
            out["error"] = f"{type(exc).__name__}: {exc}"
        return out
    run_dir = _local_dir(uri, settings, run_id)
    out["local_dir"] = str(run_dir.resolve())
    if run_dir.is_dir():
        out["files"] = [{"name": str(p.relative_to(run_dir)), "size": p.stat().st_size}
                        for p in result_files(run_dir)[:LISTING_LIMIT]]
    elif uri:
        out["error"] = f"{run_dir} is not on this machine"
    return out


def _s3_files(uri: str, settings: Settings, s3_client: Any) -> list[dict[str, Any]]:
    from .. import aws

    client = s3_client or aws.client(settings, "s3")
    bucket, prefix = aws.split_s3_uri(uri)
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    files: list[dict[str, Any]] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            files.append({"name": obj["Key"][len(prefix):], "size": obj["Size"],
                          "last_modified": obj["LastModified"].isoformat()})
            if len(files) >= LISTING_LIMIT:
                return files
    return files


def mlflow_uri(settings: Settings) -> str | None:
    """MLFLOW_TRACKING_URI, else the embedded store the tracker uses, if it exists here."""
    if settings.mlflow_tracking_uri:
        return settings.mlflow_tracking_uri
    db = Path.cwd() / "mlflow.db"
    return f"sqlite:///{db.resolve()}" if db.exists() else None


def mlflow_run(run_id: str | None, settings: Settings) -> dict[str, Any] | None:
    """The MLflow run's status, metrics and links, within MLFLOW_TIMEOUT_SECONDS (mlflow imported lazily)."""
    uri = mlflow_uri(settings)
    if not run_id:
        return None
    if not uri:
        return {"run_id": run_id, "error": "no MLFLOW_TRACKING_URI set and no ./mlflow.db here"}
    box: dict[str, Any] = {}

    def fetch() -> None:
        try:
            from mlflow.tracking import MlflowClient

            run = MlflowClient(tracking_uri=uri).get_run(run_id)
            box["run"] = {
                "run_id": run_id, "status": run.info.status, "experiment_id": run.info.experiment_id,
                "artifact_uri": run.info.artifact_uri, "metrics": dict(run.data.metrics),
                "tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
            }
        except Exception as exc:  # noqa: BLE001 - shown, not fatal
            box["error"] = f"{type(exc).__name__}: {exc}"

    thread = threading.Thread(target=fetch, name="mlflow-status", daemon=True)
    thread.start()
    thread.join(settings.mlflow_timeout_seconds)
    out: dict[str, Any] = box.get("run") or {"run_id": run_id, "error": box.get("error")}
    if thread.is_alive():
        out["error"] = f"no answer from {uri} within {settings.mlflow_timeout_seconds} s (MLFLOW_TIMEOUT_SECONDS)"
    out["tracking_uri"] = uri
    if uri.startswith(("http://", "https://")) and out.get("experiment_id"):
        out["url"] = f"{uri.rstrip('/')}/#/experiments/{out['experiment_id']}/runs/{run_id}"
    return out


def _result_notes(summary: dict[str, Any]) -> dict[str, Any]:
    from ..worker import result_notes

    return result_notes(summary)


def _local_summary(settings: Settings, run_id: str) -> dict[str, Any] | None:
    try:
        return json.loads((settings.runs_dir / run_id / SUMMARY).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


# --- the view ----------------------------------------------------------------------------
def run_view(settings: Settings, store: StatusStore, run_id: str, *, s3_client: Any = None,
             with_mlflow: bool = True, now: datetime | None = None) -> dict[str, Any] | None:
    """Everything known about ``run_id``, or None when the status store has no such run."""
    item = store.get(run_id)
    if item is None:
        return None
    now = now or datetime.now(UTC)
    times = timeline(item, settings, now)
    error = None
    if item.get("error_type"):
        error = {
            "type": item.get("error_type"), "message": item.get("error_message"),
            "retryable": item.get("retryable"), "traceback_tail": item.get("traceback_tail"),
            **(classify(item.get("error_type"), item.get("retryable")) or {}),
        }
    elif times.get("stale"):
        error = {"type": "StaleHeartbeat", "message": f"last heartbeat {times['heartbeat_age_s']} s ago "
                 f"(LEASE_SECONDS {settings.lease_seconds})", "kind": "transient", "advice": STALE_ADVICE}
    local = _local_summary(settings, run_id)
    metrics = item.get("summary") or (local or {}).get("metrics") or {}
    return {
        "run_id": run_id,
        "status": item.get("status"),
        "run": {k: item.get(k) for k in ("strategy", "strategy_version", "pairs", "timeframe", "timerange",
                                          "experiment_name", "image")},
        "attempt": item.get("attempt"),
        "owner": item.get("owner"),
        "timeline": times,
        "progress": item.get("progress"),
        "peak_memory_mb": item.get("peak_memory_mb"),
        "error": error,
        "metrics": metrics,
        "per_pair": (local or {}).get("per_pair"),
        "result_notes": item.get("result_notes") or (_result_notes(local) if local else None),
        "results": results_listing(item, settings, s3_client),
        "mlflow": mlflow_run(item.get("mlflow_run_id"), settings) if with_mlflow else None,
        "logs": log_pointer(item, settings),
        "store": describe_store(settings),
        "item": item,
    }


def describe_store(settings: Settings) -> str:
    if settings.dynamodb_table:
        return f"DynamoDB table {settings.dynamodb_table} ({settings.aws_region})"
    return f"local status store {(settings.runs_dir / '.status').resolve()}"


# --- text --------------------------------------------------------------------------------
def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {sec:02d}s" if hours else f"{minutes}m {sec:02d}s"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def render(view: dict[str, Any]) -> str:
    lines: list[str] = []
    add = lines.append
    run = view["run"]
    add(f"run {view['run_id']}   {view['status']}   attempt {view.get('attempt') or '-'}")
    pairs = run.get("pairs") or []
    add(f"  strategy     {run.get('strategy')} {run.get('strategy_version') or ''}".rstrip())
    add(f"  pairs        {', '.join(pairs) if pairs else '(config whitelist)'}")
    add(f"  range        {run.get('timerange')} ({run.get('timeframe') or 'TIMEFRAME unset'})")
    add(f"  owner        {view.get('owner') or '-'}")
    add(f"  store        {view['store']}")
    t = view["timeline"]
    add("timeline")
    add(f"  created      {t.get('created_at') or '-'}")
    add(f"  started      {t.get('started_at') or '-'}   (queued {_duration(t.get('queued_s'))})")
    beat = f"  heartbeat    {t.get('heartbeat_at') or '-'}"
    if "heartbeat_age_s" in t:
        beat += f"   ({_duration(t['heartbeat_age_s'])} ago{', STALE' if t.get('stale') else ''})"
    add(beat)
    add(f"  completed    {t.get('completed_at') or '-'}   (ran {_duration(t.get('ran_s'))})")
    if view.get("progress"):
        p = view["progress"]
        add(f"  progress     {p.get('phase')} {100 * float(p.get('fraction') or 0):.0f}%")
    if view.get("peak_memory_mb") is not None:
        add(f"  peak memory  {view['peak_memory_mb']} MB")
    err = view.get("error")
    if err:
        add("error")
        add(f"  type         {err.get('type')} ({err.get('kind')})")
        add(f"  message      {err.get('message')}")
        add(f"  what to do   {err.get('advice')}")
        if err.get("traceback_tail"):
            tail = [ln for ln in str(err["traceback_tail"]).splitlines() if ln.strip(" ^~")][-5:]
            add("  traceback    " + "\n               ".join(tail))
    if view.get("metrics"):
        add("metrics")
        for key, value in view["metrics"].items():
            add(f"  {key:<22} {_number(value)}")
    notes = view.get("result_notes")
    if notes:
        add("computed from")
        add(f"  timeframe    {notes.get('timeframe')} (from {notes.get('timeframe_source')})")
        add(f"  data         {notes.get('data_gaps')} gap(s) filled, {notes.get('data_duplicates')} duplicate(s) dropped; "
            f"protections {'ran' if notes.get('protections_ran') else 'off'}")
        for kind, count in (notes.get("warnings") or {}).items():
            add(f"  warning      {kind} x {count}")
        for missing in notes.get("missing_informative") or []:
            add(f"  allowed      {missing} (ALLOW_MISSING_INFORMATIVE)")
        if notes.get("candles") in ("synthetic", "mixed"):
            add(f"  candles      {'partly ' if notes['candles'] == 'mixed' else ''}synthetic sample data, not a market's history")
        if notes.get("markets"):
            add(f"  markets      {notes['markets']}")
        if notes.get("inferred_markets"):
            add(f"  inferred     {', '.join(notes['inferred_markets'])} (MARKETS=infer: default fees, ticks, limits)")
    res = view["results"]
    add(f"results        {res.get('uri') or res.get('local_dir') or '-'}")
    if res.get("error"):
        add(f"  (listing failed: {res['error']})")
    for f in res.get("files", []):
        add(f"  {f['name']:<44} {_size(f['size']):>10}")
    ml = view.get("mlflow")
    if ml:
        head = f"mlflow         run {ml.get('run_id')}"
        if ml.get("status"):
            head += f"   {ml['status']}"
        add(head)
        if ml.get("url"):
            add(f"  url          {ml['url']}")
        add(f"  tracking     {ml.get('tracking_uri')}")
        if ml.get("error"):
            add(f"  (not reached: {ml['error']})")
    logs = view["logs"]
    add("logs")
    add(f"  trace_id     {logs.get('trace_id')}")
    if logs.get("local_run_log"):
        add(f"  run.log      {logs['local_run_log']}")
    cw = logs.get("cloudwatch")
    if cw:
        add(f"  log group    {cw['log_group']} ({cw['region']})")
        add(f"  log stream   {cw['log_stream']}")
        add(f"  tail         {cw['tail']}")
        if cw.get("by_trace"):
            add(f"  by trace     {cw['by_trace']}")
    elif logs.get("owner_host"):
        add(f"  (ran locally on {logs['owner_host']}: no CloudWatch stream)")
    return "\n".join(lines)
