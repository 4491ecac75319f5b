"""MLflow tracking, under a hard deadline, never importing mlflow into the supervisor.

Each step (``start``, ``finish``) is a handful of calls, made by one of three clients:

- an http(s) tracking server (the deployed case): its REST API, from a thread of the
  supervisor (tracking/rest.py), tens of milliseconds beside the backtest;
- an existing sqlite store of the schema tracking/sqlite.py was written against (the
  embedded default, from the second run on): its rows written directly, likewise;
- anything else (a new sqlite file, which needs MLflow's migrations; file, databricks
  stores; MLFLOW_CLIENT=library): ``python -m strategy_runner.tracking.mlflow
  start|finish`` with the mlflow library (2-3 s of CPU and ~210 MiB, measured), input as
  JSON on stdin, JSON lines on stdout, killed with its process group when it passes
  MLFLOW_TIMEOUT_SECONDS, the client's own retries bounded too (see
  ``settings.mlflow_client_environment``).

All three run the same step functions below.

One RUN_ID is one MLflow run: ``start`` reuses the newest run tagged ``run_id=<RUN_ID>``
in the experiment (whatever its status) and reopens it as RUNNING, counting attempts in
the ``attempt`` tag. Metrics are logged with ``step=attempt``, so each attempt's values
stay in the metric history while the run shows the latest. Params cannot change in
MLflow: a retry whose params differ keeps the first values and names the keys in the
``params_conflict`` tag. This way there are never two FINISHED runs for one RUN_ID.

``finish`` logs tags, params and metrics, sets the terminal status (FINISHED, FAILED,
KILLED), then logs the equity curve and uploads the result files side by side; the
``artifacts_logged`` tag (file count) is set last, so a run without it has incomplete
artifacts or curve.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

from .. import __version__, identity, logs
from ..settings import Settings, mlflow_client_environment

log = logs.get_logger("strategy_runner.tracking")

DEFAULT_DB = "mlflow.db"
#: A new sqlite store runs ~50 schema migrations: 4 s idle, over 10 s on a loaded machine
#: (measured). Killing it half-way is worse than waiting, and a local file cannot hang like
#: a server, so sqlite stores get at least this deadline.
SQLITE_MIN_DEADLINE_S = 60.0
#: Closing a KILLED run happens inside ECS's 30 s stopTimeout, next to the worker's grace
#: and the log upload: it gets at most this long.
STOPPING_DEADLINE_S = 8.0
TERMINAL = ("FINISHED", "FAILED", "KILLED")
#: What the library's start step adds to a small run's peak, beside the worker's start-up
#: (measured: 602 MiB against 458 at 2 pair-years; the child's own RSS is ~230 MiB).
LIBRARY_STEP_MB = 150.0
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")


def tracking_uri(settings: Settings, cwd: Path | None = None) -> str:
    """MLFLOW_TRACKING_URI, else an embedded sqlite store in the working directory."""
    if settings.mlflow_tracking_uri:
        return settings.mlflow_tracking_uri
    return f"sqlite:///{((cwd or Path.cwd()) / DEFAULT_DB).resolve()}"


def artifact_root_dir(uri: str) -> Path | None:
    """For a sqlite store, the database's directory: the client runs there, so MLflow's
    default artifact root ``./mlruns`` lands beside the database (where ``mlflow ui``
    started next to it looks). None (inherit) for a server, which stores artifacts itself."""
    if not uri.startswith("sqlite:///"):
        return None
    directory = Path(uri.removeprefix("sqlite:///")).parent
    return directory if directory.is_dir() else None


class MlflowTracker:
    """The Tracker protocol (tracking/base.py) over MLflow. Never raises, never stalls."""

    def __init__(self, settings: Settings, uri: str):
        self.settings = settings
        self.uri = uri
        self.deadline = settings.mlflow_timeout_seconds
        if uri.startswith("sqlite:"):
            self.deadline = max(self.deadline, SQLITE_MIN_DEADLINE_S)
        self.mlflow_run_id: str | None = None
        self.attempt = 1
        self.start_error: str | None = None
        self._child: subprocess.Popen | None = None  # the step under way (cancel_start stops it)
        self._client: Any = None  # likewise, in this process (REST or sqlite)
        self._cancelled = False
        self._start_kind: str | None = None

    def start(self) -> str | None:
        s = self.settings
        payload = {
            "uri": self.uri, "experiment": s.experiment_name, "run_id": s.run_id,
            "tags": {
                "run_id": s.run_id, "trace_id": s.trace_id, "strategy": s.strategy,
                "strategy_version": s.strategy_version, "timeframe": s.timeframe,
                "runner_version": __version__, "image": identity.image(s), "owner": identity.owner(s),
                **({"sweep_id": s.sweep_id} if s.sweep_id else {}),
                **{f"parameter.{k}": v for k, v in (s.strategy_parameters or {}).items()},
            },
            "sweep_id": s.sweep_id,
        }
        result, error = self._call("start", payload)
        if error:
            self.start_error = error
            # The run may exist although the step did not finish (deadline, cancel): its id
            # is kept so the run is closed at the end and `reap` can find it on the item.
            self.mlflow_run_id = result.get("mlflow_run_id")
            self.attempt = int(result.get("attempt", 1))
            log.warning("MLflow tracking unavailable; the backtest goes on without it", error=error, uri=self.uri,
                        mlflow_run_id=self.mlflow_run_id)
            return self.mlflow_run_id
        self.mlflow_run_id = result.get("mlflow_run_id")
        self.attempt = int(result.get("attempt", 1))
        log.info("MLflow run started", mlflow_run_id=self.mlflow_run_id, attempt=self.attempt,
                 experiment=s.experiment_name, uri=self.uri, client=self._start_kind)
        return self.mlflow_run_id

    def finish(self, status: str, summary: dict[str, Any] | None, run_dir: Path) -> str | None:
        if status not in TERMINAL:
            status = "FAILED"
        if not self.mlflow_run_id:
            return f"MLflow run not recorded: {self.start_error or 'start() was not called'}"
        payload = {
            "uri": self.uri, "mlflow_run_id": self.mlflow_run_id, "status": status, "attempt": self.attempt,
            "tags": run_tags(self.settings, summary, status),
            "params": run_params(self.settings, summary),
            "metrics": run_metrics(summary),
            "history": {"equity": equity_history(run_dir)} if summary and summary.get("metrics") else {},
            "files": [str(p) for p in artifact_files(run_dir)],
            "run_dir": str(run_dir),
        }
        # KILLED means a stop is under way inside ECS's stopTimeout: tracking gets less time.
        deadline = min(self.deadline, STOPPING_DEADLINE_S) if status == "KILLED" else self.deadline
        _, error = self._call("finish", payload, deadline)
        if error and f"status {status}" not in error:
            # The full step did not get as far as the status: one short try at the status alone,
            # so the run is not left RUNNING.
            closed = self.close(self.mlflow_run_id, status, f"finish incomplete: {error}", deadline)
            if closed:
                error = f"{error}; closing it failed too: {closed}"
        if error:
            log.warning("MLflow logging incomplete; the run's result is unaffected", error=error,
                        mlflow_run_id=self.mlflow_run_id)
        else:
            log.info("MLflow run finished", mlflow_run_id=self.mlflow_run_id, mlflow_status=status)
        return error

    def cancel_start(self) -> None:
        """A stop or a refusal does not wait for the MLflow start: end it now (what it created
        is still reported, and closed by ``finish``)."""
        self._cancelled = True
        if self._client is not None:
            self._client.deadline = 0.0  # no further call starts
        child = self._child
        if child is not None and child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)

    def close(self, mlflow_run_id: str, status: str, reason: str, deadline: float | None = None) -> str | None:
        """End a run left open (by ``reap``, or after an incomplete finish): status and a reason tag only."""
        payload = {
            "uri": self.uri, "mlflow_run_id": mlflow_run_id, "status": status, "attempt": 1,
            "tags": {"closed_by": "strategy-runner", "close_reason": _text(reason, 5000)},
            "params": {}, "metrics": {}, "files": [], "run_dir": ".",
        }
        _, error = self._call("finish", payload, deadline)
        return error

    def start_memory_mb(self) -> float:
        # The start step's own client (it may have just created the store, which makes the
        # next step direct); before the step begins, the one it will use.
        return LIBRARY_STEP_MB if (self._start_kind or self.client_kind()) == "library" else 0.0

    def client_kind(self) -> str:
        """``rest`` for an http(s) server, ``sqlite`` for an existing store of the pinned schema
        (both in this process, no mlflow import), else ``library`` (the child process)."""
        if self.settings.mlflow_client == "auto":
            if self.uri.startswith(("http://", "https://")):
                return "rest"
            from .sqlite import writable

            if writable(self.uri):
                return "sqlite"
        return "library"

    def _call(self, step: str, payload: dict[str, Any], deadline: float | None = None) -> tuple[dict[str, Any], str | None]:
        """Run one step; (its result, None) or ({}, why it failed)."""
        deadline = deadline or self.deadline
        started = time.monotonic()
        if step == "start" and self._cancelled:
            return {}, "MLflow start skipped: the run was already stopping"
        kind = self.client_kind()
        if step == "start":
            self._start_kind = kind
        try:
            run = self._run_child if kind == "library" else self._run_here
            lines, err, timed_out = run(step, payload, deadline, kind)
        except OSError as exc:
            return {}, f"MLflow {step}: could not start the client process: {exc}"
        done = [line["done"] for line in lines if "done" in line]
        result = next((line for line in lines if "ok" in line), None)
        created = next((line for line in lines if "mlflow_run_id" in line and "ok" not in line), {})
        elapsed = time.monotonic() - started
        if timed_out:
            return created, (f"MLflow {step} passed its {deadline:g} s deadline (MLFLOW_TIMEOUT_SECONDS) and was "
                             f"stopped; done before that: {', '.join(done) or 'nothing'}")
        if self._cancelled and step == "start" and not (result and result["ok"]):
            return created, f"MLflow start stopped after {elapsed:.1f} s: the run was stopping"
        if result and result["ok"]:
            log.debug("MLflow step done", step=step, seconds=round(elapsed, 3), client=kind)
            return result, None
        why = result["error"] if result else (err.strip().splitlines() or ["no result"])[-1]
        # What it created is reported even so: a run that exists must be closed at the end.
        return created, f"MLflow {step} failed after {elapsed:.1f} s ({', '.join(done) or 'nothing'} done): {why}"[:2000]

    def _run_child(self, step: str, payload: dict[str, Any], deadline: float,
                   kind: str = "library") -> tuple[list[dict[str, Any]], str, bool]:
        """The step in ``python -m strategy_runner.tracking.mlflow``, killed with its group at the deadline."""
        proc = subprocess.Popen(
            [sys.executable, "-m", __name__, step], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True,
            env=mlflow_client_environment(self.settings), cwd=artifact_root_dir(self.uri),
        )
        self._child = proc
        timed_out = False
        try:
            out, err = proc.communicate(json.dumps(payload), timeout=deadline)
        except subprocess.TimeoutExpired:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        self._child = None
        return [line for line in map(_json_line, out.splitlines()) if line], err or f"exit code {proc.returncode}", timed_out

    def _run_here(self, step: str, payload: dict[str, Any], deadline: float,
                  kind: str) -> tuple[list[dict[str, Any]], str, bool]:
        """The step in a thread of this process, over REST or sqlite; no call starts past the
        deadline and each is bounded (request timeout, busy timeout), so the thread ends soon after it."""
        ends = time.monotonic() + deadline
        if kind == "sqlite":
            from .sqlite import SqliteClient

            client: Any = SqliteClient(self.uri, deadline=ends)
        else:
            from .rest import RestClient

            s = self.settings
            client = RestClient(
                # A request outlives the step's deadline: the step is cut by the join below, one way.
                self.uri, timeout=deadline + 1.0, deadline=ends, username=s.mlflow_tracking_username,
                password=s.mlflow_tracking_password.get_secret_value() if s.mlflow_tracking_password else None,
                token=s.mlflow_tracking_token.get_secret_value() if s.mlflow_tracking_token else None)
        self._client = client
        lines: list[dict[str, Any]] = []
        out = _Lines(lines)
        worker = threading.Thread(target=_run_step, args=(step, client, payload, out), name=f"mlflow-{step}",
                                  daemon=True)
        worker.start()
        worker.join(deadline)
        self._client = None
        return list(lines), "", worker.is_alive()


class _Lines:
    """A stream a step's _emit writes to, collected as parsed lines (the child's stdout, in-process)."""

    def __init__(self, lines: list[dict[str, Any]]):
        self.lines = lines

    def write(self, text: str) -> None:
        self.lines.extend(line for line in map(_json_line, text.splitlines()) if line)

    def flush(self) -> None:
        pass


# --- what gets logged (pure functions of the settings and the summary) -------------------

def _key(text: str) -> str:
    """A metric/param key MLflow accepts: BTC/USDT:USDT -> BTC_USDT_USDT."""
    return _KEY_UNSAFE.sub("_", text)


def _text(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:limit]


def run_tags(settings: Settings, summary: dict[str, Any] | None, status: str) -> dict[str, str]:
    summary = summary or {}
    ident = summary.get("identity") or {}
    tags = {
        "run_id": settings.run_id, "trace_id": settings.trace_id, "strategy": settings.strategy,
        "strategy_version": settings.strategy_version, "timeframe": settings.timeframe,
        "outcome": status, "runner_version": ident.get("runner_version") or __version__,
        "image": identity.image(settings), "owner": identity.owner(settings),
    }
    for key in ("trading_mode", "backtest_start", "backtest_end", "timeframe", "timeframe_source"):
        if summary.get(key):
            tags[key] = summary[key]
    tags.update({f"warning.{_key(k)}": v.get("count") for k, v in (summary.get("warnings") or {}).items()})
    if (summary.get("data_provenance") or {}).get("kind"):
        tags["candles"] = summary["data_provenance"]["kind"]  # synthetic | mixed | user
    if (summary.get("markets") or {}).get("inferred_pairs"):
        tags["markets_inferred"] = ",".join(summary["markets"]["inferred_pairs"])
    error = summary.get("error") or {}  # a failed run: what failed (supervisor/finish.py)
    for key in ("error_type", "error_message"):
        if error.get(key):
            tags[key] = error[key]
    for key in ("freqtrade_version", "data_fingerprint", "config_hash", "strategy_hash"):
        if ident.get(key):
            tags[key] = ident[key]
    cache = summary.get("cache") or {}  # written by the supervisor's result cache (cache/hook.py)
    if cache.get("key"):
        tags.update(cache_hit=str(bool(cache.get("hit"))).lower(), cache_key=cache["key"])
        if cache.get("source_run_id"):
            tags["cache_source_run_id"] = cache["source_run_id"]
    return {k: _text(v, 8000) for k, v in tags.items()}


def _flatten(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(f"{prefix}.{_key(str(k))}", v))
        return out
    return {prefix: value}


def run_params(settings: Settings, summary: dict[str, Any] | None) -> dict[str, str]:
    summary = summary or {}
    pairs = summary.get("pairs") or list(settings.pairs)
    params: dict[str, Any] = {
        "timerange": settings.timerange, "timeframe": settings.timeframe,
        "pairs": ",".join(pairs) if pairs else "(config whitelist)", "pair_count": len(pairs),
        "config": settings.config_name,
    }
    params.update(summary.get("stake") or {})
    params.update(_flatten("strategy", summary.get("strategy_params") or {}))
    return {_key(k): _text(v, 6000) for k, v in params.items() if v is not None}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def run_metrics(summary: dict[str, Any] | None) -> dict[str, float]:
    """Headline metrics as they are, per pair as ``pair.<PAIR>.<metric>``, phase durations
    as ``duration.<phase>`` (seconds) and the supervisor's figures (peak memory, upload)."""
    summary = summary or {}
    metrics: dict[str, Any] = dict(summary.get("metrics") or {})
    for row in summary.get("per_pair") or []:
        pair = _key(str(row.get("pair", "")))
        metrics.update({f"pair.{pair}.{k}": v for k, v in row.items() if k != "pair"})
    metrics.update({f"duration.{k}": v for k, v in (summary.get("durations") or {}).items()})
    for key, value in (summary.get("supervisor") or {}).items():  # peak_memory_mb
        metrics[f"duration.{key}" if key.endswith("_s") else key] = value
    return {_key(k): n for k, v in metrics.items() if (n := _number(v)) is not None}


#: At most this many points of a metric history (MLflow draws each; a sweep logs many runs).
#: A tracking server stores ~3,000 metric values a second (measured: 0.35 s per batch of
#: 1,000), and the finish is the last step of a run: 500 points draw the same curve.
HISTORY_POINTS = 500


def equity_history(run_dir: Path) -> list[list[float]]:
    """The closed-trade balance as [epoch ms, balance] points, for MLflow's own charts (metric
    ``equity``, one step per point); evenly thinned to HISTORY_POINTS, the last kept."""
    try:
        from ..report.data import equity_curve

        points = [[int(when.timestamp() * 1000), balance] for when, balance in equity_curve(run_dir)]
    except Exception as exc:  # noqa: BLE001 - a missing curve never costs the rest of tracking
        log.warning("no equity history for MLflow", error=str(exc))
        return []
    if len(points) > HISTORY_POINTS:
        stride = len(points) / (HISTORY_POINTS - 1)
        points = [points[int(i * stride)] for i in range(HISTORY_POINTS - 1)] + [points[-1]]
    return points


def artifact_files(run_dir: Path) -> list[Path]:
    """Every result file (summary, Freqtrade zip, trades.csv, run.log, reports, manifest)."""
    from ..artifacts.base import result_files

    return result_files(run_dir) if run_dir.is_dir() else []


# --- the child process: the only code that imports mlflow ----------------------------------

def _json_line(text: str) -> dict[str, Any] | None:
    try:
        line = json.loads(text)
    except json.JSONDecodeError:
        return None
    return line if isinstance(line, dict) else None


def _emit(line: dict[str, Any], out: Any) -> None:
    out.write(json.dumps(line) + "\n")
    out.flush()


def _in_process(client: Any) -> bool:
    """One of this package's clients (tracking/rest.py, tracking/sqlite.py), not the library's."""
    from .rest import RestClient
    from .sqlite import SqliteClient

    return isinstance(client, (RestClient, SqliteClient))


def _entities(client: Any) -> tuple[Any, Any, Any]:
    """(Metric, Param, RunTag) of the client at hand: the library's, or tracking/rest.py's."""
    if _in_process(client):
        from .rest import Metric, Param, RunTag
    else:
        from mlflow.entities import Metric, Param, RunTag
    return Metric, Param, RunTag


def experiment_id(client: Any, name: str) -> str:
    """The experiment's id, created when missing; safe when two runs create it at once."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name)
        except Exception as exc:  # MlflowException or rest.RestError, both with error_code
            if getattr(exc, "error_code", None) != "RESOURCE_ALREADY_EXISTS":
                raise
            experiment = client.get_experiment_by_name(name)  # another run created it first
            if experiment is None:
                raise
    if experiment.lifecycle_stage != "active":
        raise RuntimeError(f"MLflow experiment {name!r} is deleted: restore it or set another EXPERIMENT_NAME")
    return experiment.experiment_id


def _start(client: Any, payload: dict[str, Any], out: Any) -> dict[str, Any]:
    _, _, RunTag = _entities(client)  # noqa: N806 - a class

    exp_id = experiment_id(client, payload["experiment"])
    _emit({"done": "experiment"}, out)
    previous = client.search_runs(
        [exp_id], filter_string=f"tags.run_id = '{payload['run_id']}'",
        order_by=["attributes.start_time DESC"], max_results=1,
    )
    tags = dict(payload["tags"])
    if previous:  # a retried attempt: the same MLflow run, reopened
        run = previous[0]
        attempt = int(run.data.tags.get("attempt", "1")) + 1
        client.update_run(run.info.run_id, status="RUNNING")
    else:
        attempt = 1
        run = client.create_run(exp_id, run_name=payload["run_id"], tags={"run_id": payload["run_id"]})
    # The id the moment the run exists: a start stopped after this still closes its run.
    _emit({"mlflow_run_id": run.info.run_id, "attempt": attempt}, out)
    tags["attempt"] = str(attempt)
    if payload.get("sweep_id"):  # MLflow draws a sweep's items under one parent run
        tags["mlflow.parentRunId"] = sweep_parent(client, exp_id, payload["experiment"], payload["sweep_id"])
    client.log_batch(run.info.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])
    _emit({"done": "run"}, out)
    return {"mlflow_run_id": run.info.run_id, "attempt": attempt, "reused": bool(previous)}


PARENT_WAIT_SECONDS = 20.0


def sweep_lock_name(experiment: str, sweep_id: str) -> str:
    """The experiment that locks a sweep's parent run: beside the sweep's own experiment."""
    return f"{experiment} (sweep {sweep_id}: parent run lock)"


def sweep_parent(client: Any, exp_id: str, experiment: str, sweep_id: str,
                 wait_seconds: float = PARENT_WAIT_SECONDS) -> str:
    """The sweep's parent run, created once by the item that takes the sweep's lock first.

    The lock is an experiment named after the sweep: MLflow refuses a second experiment of a
    name, even a deleted one, and that is the only atomic step every store offers. (Creating
    the parent and keeping the oldest was not enough: an item that searched before another's
    parent existed kept its own.) The parent holds no backtest of its own, so it is FINISHED
    at once; the lock is deleted then, out of the experiment list, its name still taken. A
    store that refuses the lock's name gets the parent without it."""
    query = f"tags.sweep_id = '{sweep_id}' and tags.sweep_parent = 'true'"

    def found() -> list[Any]:
        return client.search_runs([exp_id], filter_string=query, order_by=["attributes.start_time ASC"], max_results=5)

    if parents := found():
        return parents[0].info.run_id
    lock = None
    try:
        lock = client.create_experiment(sweep_lock_name(experiment, sweep_id))
    except Exception as exc:  # noqa: BLE001 - MlflowException or rest.RestError, both with error_code
        if getattr(exc, "error_code", None) == "RESOURCE_ALREADY_EXISTS":
            deadline = time.monotonic() + wait_seconds
            while time.monotonic() < deadline:  # the lock's holder is creating the parent
                time.sleep(0.05)
                if parents := found():
                    return parents[0].info.run_id
        # No lock (the holder ended before creating the parent, or no such name here): create
        # it, and keep the oldest if two did.
    mine = client.create_run(exp_id, run_name=sweep_id, tags={"sweep_id": sweep_id, "sweep_parent": "true"})
    client.set_terminated(mine.info.run_id, status="FINISHED")
    if lock is not None:
        client.delete_experiment(lock)
        return mine.info.run_id
    parents = found()
    if parents[0].info.run_id != mine.info.run_id:
        client.delete_run(mine.info.run_id)
    return parents[0].info.run_id


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _finish(client: Any, payload: dict[str, Any], out: Any) -> dict[str, Any]:
    Metric, Param, RunTag = _entities(client)  # noqa: N806 - classes

    run_id = payload["mlflow_run_id"]
    existing = client.get_run(run_id).data.params
    params = payload["params"]
    conflicts = sorted(k for k, v in params.items() if k in existing and existing[k] != v)
    tags = dict(payload["tags"])
    if conflicts:
        tags["params_conflict"] = ",".join(conflicts)[:8000]
    now = int(time.time() * 1000)
    step = int(payload.get("attempt", 1))
    metrics = [Metric(k, v, now, step) for k, v in payload["metrics"].items()]
    history = [Metric(key, float(value), int(ts), i)  # a curve: one step per point
               for key, points in (payload.get("history") or {}).items() for i, (ts, value) in enumerate(points)]
    new_params = [Param(k, v) for k, v in params.items() if k not in existing]
    for chunk in _chunks([RunTag(k, v) for k, v in tags.items()], 100):
        client.log_batch(run_id, tags=chunk)
    for chunk in _chunks(new_params, 100):
        client.log_batch(run_id, params=chunk)
    for chunk in _chunks(metrics, 1000):
        client.log_batch(run_id, metrics=chunk)
    _emit({"done": "tags, params, metrics"}, out)
    client.set_terminated(run_id, status=payload["status"])
    _emit({"done": f"status {payload['status']}"}, out)
    run_dir = Path(payload["run_dir"])
    files = [Path(f) for f in payload["files"] if Path(f).is_file()]

    def log_artifact(path: Path) -> None:
        sub = path.parent.relative_to(run_dir).as_posix()
        client.log_artifact(run_id, str(path), artifact_path=None if sub == "." else sub)

    # The curve first: a server stores ~3,000 values a second, the longest of these requests.
    jobs = [partial(client.log_batch, run_id, metrics=chunk) for chunk in _chunks(history, 1000)]
    jobs += [partial(log_artifact, path) for path in files]
    if _in_process(client):  # a request (or copy) per file, side by side
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="mlflow-artifact") as pool:
            list(pool.map(lambda job: job(), jobs))  # the first failure is raised here
    else:  # the library's client: one at a time
        for job in jobs:
            job()
    client.set_tag(run_id, "artifacts_logged", str(len(files)))
    _emit({"done": f"{len(files)} artifacts"}, out)
    return {"mlflow_run_id": run_id}


STEPS = {"start": _start, "finish": _finish}


def _run_step(step: str, client: Any, payload: dict[str, Any], out: Any) -> int:
    """One step; its outcome as the last line on ``out``."""
    try:
        if step not in STEPS:
            raise RuntimeError(f"unknown step {step!r}: expected start or finish")
        result = STEPS[step](client, payload, out)
    except Exception as exc:  # noqa: BLE001 - reported to the supervisor, which goes on
        _emit({"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}, out)
        return 1
    finally:
        getattr(client, "close", lambda: None)()  # the sqlite client's connection
    _emit({"ok": True, **result}, out)
    return 0


def main(argv: list[str]) -> int:
    """``python -m strategy_runner.tracking.mlflow start|finish`` (JSON on stdin): the library client."""
    out = sys.stdout
    step = argv[0] if argv else ""
    with contextlib.suppress(OSError):
        os.nice(10)  # importing mlflow is seconds of CPU: the backtest beside it goes first
    try:
        payload = json.load(sys.stdin)
        with contextlib.redirect_stdout(sys.stderr):  # mlflow prints "View run ..." lines
            try:
                from mlflow.tracking import MlflowClient
            except ImportError as exc:
                raise RuntimeError(f"the mlflow client is not installed ({exc})") from None
            if payload["uri"].startswith("sqlite:"):
                try:
                    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
                except ImportError as exc:
                    raise RuntimeError(
                        f"the embedded sqlite store needs SQLAlchemy and alembic next to mlflow-skinny ({exc}): "
                        "install alembic or the full 'mlflow' package, or set MLFLOW_TRACKING_URI to a server"
                    ) from None
            client = MlflowClient(tracking_uri=payload["uri"])
            return _run_step(step, client, payload, out)
    except Exception as exc:  # noqa: BLE001 - reported to the supervisor, which goes on
        _emit({"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}, out)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
