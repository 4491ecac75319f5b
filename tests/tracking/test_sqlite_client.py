"""tracking/sqlite.py against the mlflow library on the same store: the same steps give the
same rows, the library reads what it wrote, and it writes only the schema it was pinned to."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
import uuid
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from strategy_runner.settings import load_settings
from strategy_runner.tracking import sqlite as direct
from strategy_runner.tracking.mlflow import (
    LIBRARY_STEP_MB,
    MlflowTracker,
    _finish,
    _Lines,
    _start,
    experiment_id,
    sweep_lock_name,
    sweep_parent,
)

TABLES = ("experiments", "experiment_tags", "runs", "tags", "params", "metrics", "latest_metrics")
HISTORY = [[1704067200000 + i * 3_600_000, 1000.0 + i] for i in range(50)]  # 2024: kept as given


@pytest.fixture(scope="module")
def fresh_store(tmp_path_factory) -> Path:
    """A store as MLflow creates it (all migrations), copied for each test."""
    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


def store(fresh_store: Path, directory: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(fresh_store, directory / "mlflow.db")
    return f"sqlite:///{directory / 'mlflow.db'}"


def library(uri: str, monkeypatch) -> MlflowClient:
    """The library's client as the tracker runs it: from the database's directory."""
    monkeypatch.chdir(direct.database_path(uri).parent)
    return MlflowClient(tracking_uri=uri)


def ours(uri: str) -> direct.SqliteClient:
    return direct.SqliteClient(uri, deadline=time.monotonic() + 60)


def steps(client, run_dir: Path, *, sweep_id: str | None = None, status: str = "FINISHED",
          params: dict[str, str] | None = None) -> dict:
    """A start and a finish as the tracker sends them."""
    lines: list = []
    out = _Lines(lines)
    started = _start(client, {"experiment": "exp", "run_id": "r-1", "sweep_id": sweep_id,
                              "tags": {"run_id": "r-1", "strategy": "S", "nan_tag": "x" * 300}}, out)
    _finish(client, {
        "mlflow_run_id": started["mlflow_run_id"], "status": status, "attempt": started["attempt"],
        "tags": {"outcome": status, "run_id": "r-1"},
        "params": params or {"timerange": "20240101-20240201", "pairs": "BTC/USDT"},
        "metrics": {"profit_total": 0.125, "nan_metric": float("nan"), "inf_metric": float("inf"),
                    "neg_inf": float("-inf"), "trades": 3.0},
        "history": {"equity": HISTORY},
        "files": [str(p) for p in sorted(run_dir.rglob("*")) if p.is_file()], "run_dir": str(run_dir),
    }, out)
    return started


def dump(uri: str) -> dict[str, list[tuple]]:
    """Every row of the tables a run touches, with ids and clock times made comparable."""
    path = direct.database_path(uri)
    db = sqlite3.connect(path)
    ids: dict[str, str] = {}
    now = time.time() * 1000

    def norm(value):
        if isinstance(value, str):
            for run_id, name in ids.items():
                value = value.replace(run_id, name)
            return value.replace(str(path.parent), "<dir>")
        if isinstance(value, int) and abs(value - now) < 600_000:
            return "<now>"
        return value

    for (run_id,) in db.execute("SELECT run_uuid FROM runs ORDER BY start_time, name"):
        ids[run_id] = f"<run{len(ids)}>"
    out = {}
    for table in TABLES:
        rows = db.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608 - our own table names
        out[table] = sorted((tuple(norm(v) for v in row) for row in rows), key=repr)
    out["artifacts"] = sorted(norm(p.relative_to(path.parent).as_posix()) for p in (path.parent / "mlruns").rglob("*")
                              if p.is_file())
    db.close()
    return out


@pytest.fixture
def run_dir(tmp_path) -> Path:
    d = tmp_path / "run"
    (d / "reports").mkdir(parents=True)
    (d / "summary.json").write_text('{"a": 1}')
    (d / "reports" / "report.html").write_text("<html></html>")
    return d


@pytest.mark.parametrize("sweep_id", [None, "sweep-1"])
def test_the_same_steps_write_the_same_rows_as_the_library(fresh_store, tmp_path, run_dir, sweep_id, monkeypatch):
    a, b = store(fresh_store, tmp_path / "library"), store(fresh_store, tmp_path / "direct")
    for uri, client in ((a, library(a, monkeypatch)), (b, ours(b))):
        steps(client, run_dir, sweep_id=sweep_id)
        # the retry: the same MLflow run reopened, attempt 2, a changed param named, not logged
        steps(client, run_dir, sweep_id=sweep_id, status="FAILED", params={"timerange": "20240101-20240301"})
    expected, got = dump(a), dump(b)
    for table in (*TABLES, "artifacts"):
        assert got[table] == expected[table], table
    assert len(got["artifacts"]) == 2  # one run (the retry reopens it), both files
    assert any(r[0] == "params_conflict" and r[1] == "timerange" for r in got["tags"])


def test_the_library_reads_what_it_wrote(fresh_store, tmp_path, run_dir, monkeypatch):
    uri = store(fresh_store, tmp_path / "s")
    started = steps(ours(uri), run_dir)
    reader = library(uri, monkeypatch)
    run = reader.get_run(started["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == "r-1"
    assert run.data.metrics["profit_total"] == 0.125 and run.data.params["pairs"] == "BTC/USDT"
    assert [m.value for m in reader.get_metric_history(run.info.run_id, "equity")] == [v for _, v in HISTORY]
    assert {a.path for a in reader.list_artifacts(run.info.run_id)} == {"reports", "summary.json"}
    [found] = reader.search_runs([run.info.experiment_id], filter_string="tags.run_id = 'r-1'")
    assert found.info.run_id == run.info.run_id
    # and the other way: a run the library started is finished by this client
    lib_started = _start(reader, {"experiment": "exp", "run_id": "r-2", "sweep_id": None, "tags": {}}, _Lines([]))
    assert ours(uri).search_runs([run.info.experiment_id], "tags.run_id = 'r-2'")[0].info.run_id == \
        lib_started["mlflow_run_id"]


def test_only_a_store_of_the_pinned_schema_is_written_directly(fresh_store, tmp_path):
    uri = store(fresh_store, tmp_path / "s")
    assert direct.writable(uri)
    assert not direct.writable(f"sqlite:///{tmp_path / 'missing.db'}")  # MLflow creates it (migrations)
    assert not direct.writable("http://127.0.0.1:5000") and not direct.writable("sqlite:///:memory:")
    old = store(fresh_store, tmp_path / "old")
    with sqlite3.connect(direct.database_path(old)) as db:
        db.execute("UPDATE alembic_version SET version_num = 'a1b2c3d4e5f6'")
    assert not direct.writable(old)
    (tmp_path / "garbage.db").write_text("not a database")
    assert not direct.writable(f"sqlite:///{tmp_path / 'garbage.db'}")
    settings = load_settings(RUN_ID="r", EXPERIMENT_NAME="e")
    assert MlflowTracker(settings, uri).client_kind() == "sqlite"
    assert MlflowTracker(settings, old).client_kind() == "library"
    assert MlflowTracker(load_settings(RUN_ID="r", MLFLOW_CLIENT="library"), uri).client_kind() == "library"
    # the memory estimate counts the library's child beside the start only where it runs
    assert MlflowTracker(settings, uri).start_memory_mb() == 0
    assert MlflowTracker(settings, f"sqlite:///{tmp_path / 'new.db'}").start_memory_mb() == LIBRARY_STEP_MB
    assert MlflowTracker(settings, "http://127.0.0.1:5000").start_memory_mb() == 0


def test_the_pinned_schema_is_the_installed_mlflow_head(fresh_store):
    """An mlflow upgrade that adds a migration fails here: re-check the rows (the test above)
    and move SCHEMA_REVISION."""
    with sqlite3.connect(fresh_store) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchone()[0] == direct.SCHEMA_REVISION


def together(target, n: int) -> None:
    """``target`` in ``n`` threads at once, all joined."""
    threads = [threading.Thread(target=target) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)


def test_runs_racing_for_one_experiment_create_it_once(fresh_store, tmp_path):
    uri = store(fresh_store, tmp_path / "s")
    name = f"race-{uuid.uuid4().hex[:6]}"
    ids: list[str] = []
    barrier = threading.Barrier(4)

    def go():
        client = ours(uri)
        barrier.wait()
        ids.append(experiment_id(client, name))
        client.close()

    together(go, 4)
    assert len(ids) == 4 and len(set(ids)) == 1


class SearchedTogether:
    """A client whose callers all finish their first search before any goes on: the
    interleaving that gave CI two parent runs (each item searched before the other's existed)."""

    def __init__(self, client, barrier: threading.Barrier, created: list[str]):
        self._client, self._barrier, self._created, self._searched = client, barrier, created, False

    def __getattr__(self, name):
        return getattr(self._client, name)

    def search_runs(self, *args, **kwargs):
        found = self._client.search_runs(*args, **kwargs)
        if not self._searched:
            self._searched = True
            self._barrier.wait(30)
        return found

    def create_run(self, experiment_id, run_name=None, tags=None):
        run = self._client.create_run(experiment_id, run_name=run_name, tags=tags)
        if (tags or {}).get("sweep_parent"):
            self._created.append(run.info.run_id)
        return run


def test_sweep_items_racing_create_one_parent_run(fresh_store, tmp_path, monkeypatch):
    uri = store(fresh_store, tmp_path / "s")
    exp = experiment_id(ours(uri), "exp")
    barrier, created, parents = threading.Barrier(4), [], []

    def item():
        client = ours(uri)
        parents.append(sweep_parent(SearchedTogether(client, barrier, created), exp, "exp", "sweep-1"))
        client.close()

    together(item, 4)
    assert len(created) == 1 and parents == created * 4
    reader = library(uri, monkeypatch)
    run = reader.get_run(created[0])
    assert run.info.status == "FINISHED" and run.info.lifecycle_stage == "active"
    assert reader.get_experiment_by_name(sweep_lock_name("exp", "sweep-1")).lifecycle_stage == "deleted"
    assert sweep_parent(ours(uri), exp, "exp", "sweep-1") == created[0]  # a retried item finds it


def test_a_sweep_lock_left_by_an_ended_item_is_waited_out(fresh_store, tmp_path):
    uri = store(fresh_store, tmp_path / "s")
    client = ours(uri)
    exp = experiment_id(client, "exp")
    client.create_experiment(sweep_lock_name("exp", "sweep-1"))  # its holder died before the parent
    parent = sweep_parent(client, exp, "exp", "sweep-1", wait_seconds=0.3)
    found = client.search_runs([exp], "tags.sweep_id = 'sweep-1' and tags.sweep_parent = 'true'")
    assert [r.info.run_id for r in found] == [parent]


def test_a_store_refusing_the_lock_name_still_gets_one_parent(fresh_store, tmp_path):
    from strategy_runner.tracking.rest import RestError

    class NoSuchName(direct.SqliteClient):  # as a workspace whose experiment names are paths
        def create_experiment(self, name):
            if "parent run lock" in name:
                raise RestError(f"invalid experiment name {name!r}", "INVALID_PARAMETER_VALUE")
            return super().create_experiment(name)

    client = NoSuchName(store(fresh_store, tmp_path / "s"), deadline=time.monotonic() + 60)
    exp = experiment_id(client, "exp")
    parent = sweep_parent(client, exp, "exp", "sweep-1")
    assert sweep_parent(client, exp, "exp", "sweep-1") == parent
    found = client.search_runs([exp], "tags.sweep_id = 'sweep-1' and tags.sweep_parent = 'true'")
    assert [r.info.run_id for r in found] == [parent]


def test_no_call_starts_after_the_deadline(fresh_store, tmp_path):
    client = direct.SqliteClient(store(fresh_store, tmp_path / "s"), deadline=time.monotonic() - 1)
    with pytest.raises(TimeoutError):
        client.get_experiment_by_name("exp")


def test_a_deleted_run_is_not_written(fresh_store, tmp_path, monkeypatch):
    uri = store(fresh_store, tmp_path / "s")
    client = ours(uri)
    exp = experiment_id(client, "exp")
    run = client.create_run(exp, run_name="x", tags={"run_id": "x"})
    client.delete_run(run.info.run_id)
    assert client.search_runs([exp], "tags.run_id = 'x'") == []
    with pytest.raises(Exception, match="active"):
        client.set_terminated(run.info.run_id, "FINISHED")
    assert library(uri, monkeypatch).get_run(run.info.run_id).info.lifecycle_stage == "deleted"
