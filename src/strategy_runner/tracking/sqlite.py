"""The embedded sqlite store written directly, with the standard library: no mlflow import.

The mlflow library's sqlite store costs ~210 MiB and 2-3 s of CPU per step (measured:
importing ``SqlAlchemyStore``), and the ``start`` step runs beside the worker's data load,
so on a local run it was both the largest memory cost after the backtest itself and most
of the tracking time. A run writes a handful of rows (one run, its tags, params, metrics
and their latest values) and copies its result files: this client does that in
milliseconds, from a thread of the supervisor, with the method names and result shapes of
``mlflow.tracking.MlflowClient`` that tracking/mlflow.py's steps use (as tracking/rest.py).

It writes only a store whose schema is the one it was written against: the migration
``alembic_version`` equal to SCHEMA_REVISION (MLflow 3.17's head). Any other store (a new
file, which MLflow has to create with its migrations; an older or newer schema) goes
through the library, so an MLflow upgrade never gets rows it does not expect. A test
writes the same steps with both clients and compares every row, and another fails when
the installed mlflow's head moves.
"""

from __future__ import annotations

import contextlib
import math
import re
import sqlite3
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .rest import Metric, Param, RestError, RunTag, _run, copy_artifact

__all__ = ["SCHEMA_REVISION", "Metric", "Param", "RunTag", "SqliteClient", "writable"]

#: The alembic head of the mlflow this was checked against (tests/tracking pins it).
SCHEMA_REVISION = "dc11669786a5"
WORKSPACE = "default"  # single-tenant stores keep every experiment in it
_TAG_EQUALS = re.compile(r"tags\.(?P<key>[\w.\-]+)\s*=\s*'(?P<value>[^']*)'")
_ORDER = re.compile(r"attributes\.start_time\s+(ASC|DESC)", re.IGNORECASE)
#: What MLflow stores for an infinite metric (sql has no inf).
_MAX_FLOAT = 1.7976931348623157e308


def database_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` URI; None for anything else (``:memory:``, other schemes)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = urllib.parse.unquote(uri.removeprefix("sqlite:///").split("?", 1)[0])
    return Path(path) if path and path != ":memory:" else None


def writable(uri: str) -> bool:
    """True when ``uri`` is an existing sqlite store at SCHEMA_REVISION."""
    path = database_path(uri)
    if path is None or not path.is_file():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return False
    return bool(row) and row[0] == SCHEMA_REVISION


def _now_ms() -> int:
    return int(time.time() * 1000)


class SqliteClient:
    """MLflow's sqlite store at ``uri`` (see writable()). No call starts after ``deadline``
    (a time.monotonic() value); artifacts go beside the database (``./mlruns``), as the
    library's client run from the database's directory puts them."""

    def __init__(self, uri: str, *, deadline: float):
        path = database_path(uri)
        if path is None:
            raise ValueError(f"not a sqlite file store: {uri}")
        self.path = path
        self.deadline = deadline
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one connection; the finish step copies artifacts from threads

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; BEGIN IMMEDIATE takes the write lock up front, so two runs
        writing one store wait for each other (busy timeout) instead of failing mid-way."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("MLflow: out of time before the next write")
        with self._lock:
            if self._db is None:
                self._db = sqlite3.connect(self.path, timeout=remaining, isolation_level=None, check_same_thread=False)
                self._db.execute("PRAGMA foreign_keys = ON")
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # --- experiments ---------------------------------------------------------------------
    def get_experiment_by_name(self, name: str) -> SimpleNamespace | None:
        with self._tx() as db:
            row = db.execute("SELECT experiment_id, lifecycle_stage FROM experiments WHERE name = ? AND workspace = ?",
                             (name, WORKSPACE)).fetchone()
        return SimpleNamespace(experiment_id=str(row[0]), lifecycle_stage=row[1]) if row else None

    def create_experiment(self, name: str) -> str:
        now = _now_ms()
        try:
            with self._tx() as db:
                cursor = db.execute(
                    "INSERT INTO experiments (name, lifecycle_stage, creation_time, last_update_time, workspace) "
                    "VALUES (?, 'active', ?, ?, ?)", (name, now, now, WORKSPACE))
                exp_id = cursor.lastrowid
                location = str((self.path.parent / "mlruns" / str(exp_id)).resolve())
                db.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?", (location, exp_id))
        except sqlite3.IntegrityError as exc:
            raise RestError(f"Experiment(name={name}) already exists: {exc}", "RESOURCE_ALREADY_EXISTS") from None
        return str(exp_id)

    def delete_experiment(self, experiment_id: str) -> None:  # only an experiment without runs, here
        with self._tx() as db:
            if db.execute("SELECT 1 FROM runs WHERE experiment_id = ? LIMIT 1", (experiment_id,)).fetchone():
                raise RestError(f"experiment {experiment_id} has runs: not deleted here", "INVALID_STATE")
            db.execute("UPDATE experiments SET lifecycle_stage = 'deleted', last_update_time = ? "
                       "WHERE experiment_id = ? AND lifecycle_stage = 'active'", (_now_ms(), experiment_id))

    # --- runs ----------------------------------------------------------------------------
    def create_run(self, experiment_id: str, run_name: str | None = None, tags: dict[str, str] | None = None):
        tags = {k: str(v) for k, v in (tags or {}).items()}
        run_id = uuid.uuid4().hex
        with self._tx() as db:
            row = db.execute("SELECT artifact_location, lifecycle_stage FROM experiments WHERE experiment_id = ?",
                             (int(experiment_id),)).fetchone()
            if row is None:
                raise RestError(f"No Experiment with id={experiment_id} exists", "RESOURCE_DOES_NOT_EXIST")
            if row[1] != "active":
                raise RestError(f"The experiment {experiment_id} must be in the 'active' state", "INVALID_STATE")
            name = run_name or tags.get("mlflow.runName") or run_id
            tags.setdefault("mlflow.runName", name)
            db.execute(
                "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
                "start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id, deleted_time) "
                "VALUES (?, ?, 'UNKNOWN', '', '', ?, 'RUNNING', ?, NULL, '', 'active', ?, ?, NULL)",
                (run_id, name, tags.get("mlflow.user", "unknown"), _now_ms(), f"{row[0]}/{run_id}/artifacts",
                 int(experiment_id)))
            db.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)",
                           [(k, v, run_id) for k, v in tags.items()])
            return self._get(db, run_id)

    def get_run(self, run_id: str):
        with self._tx() as db:
            return self._get(db, run_id)

    def search_runs(self, experiment_ids: list[str], filter_string: str = "", order_by: list[str] | None = None,
                    max_results: int = 1000) -> list[SimpleNamespace]:
        """Active runs whose tags equal the filter's: the ``tags.k = 'v' [and ...]`` form only."""
        clauses = [c.strip() for c in re.split(r"\s+and\s+", filter_string.strip(), flags=re.IGNORECASE) if c.strip()]
        matches = [_TAG_EQUALS.fullmatch(c) for c in clauses]
        if not all(matches):
            raise ValueError(f"filter not supported by the direct sqlite client: {filter_string!r}")
        direction = "ASC"
        for order in order_by or []:
            found = _ORDER.fullmatch(order.strip())
            if not found:
                raise ValueError(f"order not supported by the direct sqlite client: {order!r}")
            direction = found.group(1).upper()
        sql = (f"SELECT run_uuid FROM runs WHERE lifecycle_stage = 'active' AND experiment_id IN "
               f"({','.join('?' * len(experiment_ids))})"
               + "".join(" AND EXISTS (SELECT 1 FROM tags t WHERE t.run_uuid = runs.run_uuid AND t.key = ? "
                         "AND t.value = ?)" for _ in matches)
               + f" ORDER BY start_time {direction}, run_uuid LIMIT ?")
        args: list[Any] = [int(e) for e in experiment_ids]
        for m in matches:
            args += [m.group("key"), m.group("value")]
        with self._tx() as db:
            ids = [r[0] for r in db.execute(sql, [*args, max_results])]
            return [self._get(db, run_id) for run_id in ids]

    def update_run(self, run_id: str, status: str) -> None:
        with self._tx() as db:
            self._active(db, run_id)
            db.execute("UPDATE runs SET status = ? WHERE run_uuid = ?", (status, run_id))

    def set_terminated(self, run_id: str, status: str = "FINISHED") -> None:
        with self._tx() as db:
            self._active(db, run_id)
            db.execute("UPDATE runs SET status = ?, end_time = ? WHERE run_uuid = ?", (status, _now_ms(), run_id))

    def delete_run(self, run_id: str) -> None:
        with self._tx() as db:
            self._active(db, run_id)
            db.execute("UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = ? WHERE run_uuid = ?",
                       (_now_ms(), run_id))

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self.log_batch(run_id, tags=[RunTag(key, str(value))])

    def log_batch(self, run_id: str, metrics: list[Metric] = (), params: list[Param] = (),  # type: ignore[assignment]
                  tags: list[RunTag] = ()) -> None:  # type: ignore[assignment]
        with self._tx() as db:
            self._active(db, run_id)
            for p in params:  # params never change: the same value again is fine, another is an error
                old = db.execute("SELECT value FROM params WHERE run_uuid = ? AND key = ?", (run_id, p.key)).fetchone()
                if old is None:
                    db.execute("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", (p.key, str(p.value), run_id))
                elif old[0] != str(p.value):
                    raise RestError(f"Changing param values is not allowed. Param with key='{p.key}' was already "
                                    f"logged with value='{old[0]}'", "INVALID_PARAMETER_VALUE")
            db.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?) "
                           "ON CONFLICT (key, run_uuid) DO UPDATE SET value = excluded.value",
                           [(t.key, str(t.value), run_id) for t in tags])
            rows = [(m.key, *_sanitized(m.value), int(m.timestamp), int(m.step)) for m in metrics]
            db.executemany("INSERT OR IGNORE INTO metrics (key, value, is_nan, timestamp, step, run_uuid) "
                           "VALUES (?, ?, ?, ?, ?, ?)", [(*r, run_id) for r in rows])
            newest: dict[str, tuple[Any, ...]] = {}
            for key, value, is_nan, ts, step in rows:  # MLflow's order: step, then timestamp, then value
                if key not in newest or (step, ts, value) > newest[key][:3]:
                    newest[key] = (step, ts, value, is_nan)
            for key, (step, ts, value, is_nan) in newest.items():
                old = db.execute("SELECT step, timestamp, value FROM latest_metrics WHERE run_uuid = ? AND key = ?",
                                 (run_id, key)).fetchone()
                if old is None or (step, ts, value) > tuple(old):
                    db.execute("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
                               "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key, run_uuid) DO UPDATE SET "
                               "value = excluded.value, timestamp = excluded.timestamp, step = excluded.step, "
                               "is_nan = excluded.is_nan", (key, value, ts, step, is_nan, run_id))

    def log_artifact(self, run_id: str, local_path: str, artifact_path: str | None = None) -> None:
        copy_artifact(self.get_run(run_id).info.artifact_uri, local_path, artifact_path)

    # --- reading -------------------------------------------------------------------------
    @staticmethod
    def _active(db: sqlite3.Connection, run_id: str) -> None:
        row = db.execute("SELECT lifecycle_stage FROM runs WHERE run_uuid = ?", (run_id,)).fetchone()
        if row is None:
            raise RestError(f"Run with id={run_id} not found", "RESOURCE_DOES_NOT_EXIST")
        if row[0] != "active":
            raise RestError(f"The run {run_id} must be in the 'active' state. Current state is {row[0]}.",
                            "INVALID_PARAMETER_VALUE")

    @staticmethod
    def _get(db: sqlite3.Connection, run_id: str):
        row = db.execute("SELECT start_time, artifact_uri, status FROM runs WHERE run_uuid = ?", (run_id,)).fetchone()
        if row is None:
            raise RestError(f"Run with id={run_id} not found", "RESOURCE_DOES_NOT_EXIST")
        tags = db.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (run_id,)).fetchall()
        params = db.execute("SELECT key, value FROM params WHERE run_uuid = ?", (run_id,)).fetchall()
        return _run({"info": {"run_id": run_id, "start_time": row[0], "artifact_uri": row[1], "status": row[2]},
                     "data": {"tags": [{"key": k, "value": v} for k, v in tags],
                              "params": [{"key": k, "value": v} for k, v in params]}})


def _sanitized(value: float) -> tuple[float, int]:
    """(value, is_nan) as MLflow stores them: NaN as 0 with the flag, infinities as the largest float."""
    value = float(value)
    if math.isnan(value):
        return 0.0, 1
    if math.isinf(value):
        return (_MAX_FLOAT if value > 0 else -_MAX_FLOAT), 0
    return value, 0
