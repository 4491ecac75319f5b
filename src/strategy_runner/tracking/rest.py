"""The few MLflow REST calls a run makes, over the standard library: no mlflow import.

Importing the mlflow client costs seconds of CPU per step (measured: 2-4 s, beside the
backtest on the same cores), which is most of a short run's overhead. Against an
``http(s)://`` tracking server the supervisor makes the calls itself with this client; the
library (tracking/mlflow.py's child process) stays for other stores (sqlite, file,
databricks) and for what this client does not do (MLFLOW_CLIENT=library).

It has the method names and result shapes of ``mlflow.tracking.MlflowClient`` that
tracking/mlflow.py's steps use, so the steps run unchanged over either. Endpoints:
https://mlflow.org/docs/latest/api_reference/rest-api.html. Artifacts go to the server's
proxy (``mlflow-artifacts:`` URIs, ``mlflow server --serve-artifacts``, the default) or to
a local path; any other artifact store raises, and the step names it.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import shutil
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

API = "/api/2.0/mlflow"
ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"


@dataclass(frozen=True)
class RunTag:
    key: str
    value: str


@dataclass(frozen=True)
class Param:
    key: str
    value: str


@dataclass(frozen=True)
class Metric:
    key: str
    value: float
    timestamp: int
    step: int


class RestError(RuntimeError):
    """An MLflow API error; ``error_code`` as the server sent it (RESOURCE_ALREADY_EXISTS ...)."""

    def __init__(self, message: str, error_code: str = ""):
        super().__init__(message)
        self.error_code = error_code


class RestClient:
    """MLflow's REST API at ``uri``: each request bounded by ``timeout``; none starts after
    ``deadline`` (a time.monotonic() value)."""

    def __init__(self, uri: str, *, timeout: float, deadline: float, username: str | None = None,
                 password: str | None = None, token: str | None = None):
        self.uri = uri.rstrip("/")
        self.timeout = timeout
        self.deadline = deadline
        self.headers = {"User-Agent": "strategy-runner"}
        self._artifact_uris: dict[str, str] = {}
        self._artifact_lock = threading.Lock()  # artifacts are logged from threads: one lookup per run
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        elif username and password:
            self.headers["Authorization"] = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()

    # --- transport ---------------------------------------------------------------------
    def _request(self, method: str, url: str, body: bytes | None = None, content_type: str = "application/json") -> Any:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("MLflow: out of time before the next request")
        request = urllib.request.Request(url, data=body, method=method,
                                         headers={**self.headers, **({"Content-Type": content_type} if body else {})})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            try:
                parsed = json.loads(detail)
            except json.JSONDecodeError:
                parsed = {}
            raise RestError(f"HTTP {exc.code} from {urllib.parse.urlsplit(url).path}: "
                            f"{parsed.get('message') or detail[:300]}", parsed.get("error_code", "")) from None
        return json.loads(text) if text.strip() else {}

    def _call(self, method: str, endpoint: str, payload: dict[str, Any] | None = None) -> Any:
        url = f"{self.uri}{API}/{endpoint}"
        if method == "GET":
            return self._request("GET", f"{url}?{urllib.parse.urlencode(payload or {})}")
        return self._request(method, url, json.dumps(payload or {}).encode())

    # --- MlflowClient's methods, as tracking/mlflow.py uses them -------------------------
    def get_experiment_by_name(self, name: str) -> SimpleNamespace | None:
        try:
            found = self._call("GET", "experiments/get-by-name", {"experiment_name": name})["experiment"]
        except RestError as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return SimpleNamespace(experiment_id=found["experiment_id"], lifecycle_stage=found.get("lifecycle_stage"))

    def create_experiment(self, name: str) -> str:
        return self._call("POST", "experiments/create", {"name": name})["experiment_id"]

    def delete_experiment(self, experiment_id: str) -> None:
        self._call("POST", "experiments/delete", {"experiment_id": experiment_id})

    def create_run(self, experiment_id: str, run_name: str | None = None, tags: dict[str, str] | None = None):
        payload = {"experiment_id": experiment_id, "start_time": int(time.time() * 1000),
                   "tags": [{"key": k, "value": str(v)} for k, v in (tags or {}).items()],
                   **({"run_name": run_name} if run_name else {})}
        return _run(self._call("POST", "runs/create", payload)["run"])

    def get_run(self, run_id: str):
        return _run(self._call("GET", "runs/get", {"run_id": run_id})["run"])

    def search_runs(self, experiment_ids: list[str], filter_string: str = "", order_by: list[str] | None = None,
                    max_results: int = 1000) -> list[SimpleNamespace]:
        found = self._call("POST", "runs/search", {"experiment_ids": experiment_ids, "filter": filter_string,
                                                   "order_by": order_by or [], "max_results": max_results})
        return [_run(r) for r in found.get("runs", [])]

    def update_run(self, run_id: str, status: str) -> None:
        self._call("POST", "runs/update", {"run_id": run_id, "status": status})

    def set_terminated(self, run_id: str, status: str = "FINISHED") -> None:
        self._call("POST", "runs/update", {"run_id": run_id, "status": status, "end_time": int(time.time() * 1000)})

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self._call("POST", "runs/set-tag", {"run_id": run_id, "key": key, "value": str(value)})

    def delete_run(self, run_id: str) -> None:
        self._call("POST", "runs/delete", {"run_id": run_id})

    def log_batch(self, run_id: str, metrics: list[Metric] = (), params: list[Param] = (),  # type: ignore[assignment]
                  tags: list[RunTag] = ()) -> None:  # type: ignore[assignment]
        self._call("POST", "runs/log-batch", {
            "run_id": run_id,
            "metrics": [{"key": m.key, "value": m.value, "timestamp": m.timestamp, "step": m.step} for m in metrics],
            "params": [{"key": p.key, "value": p.value} for p in params],
            "tags": [{"key": t.key, "value": t.value} for t in tags],
        })

    def log_artifact(self, run_id: str, local_path: str, artifact_path: str | None = None) -> None:
        root = self._artifact_uri(run_id)
        name = Path(local_path).name
        parsed = urllib.parse.urlsplit(root)
        if parsed.scheme == "mlflow-artifacts":  # the server's proxy: one PUT per file (as MLflow resolves it)
            track = urllib.parse.urlsplit(self.uri)
            parts = (track.path, ARTIFACTS_API, parsed.path, artifact_path or "", name)
            path = "/".join(p.strip("/") for p in parts if p.strip("/"))
            with open(local_path, "rb") as fh:
                self._request("PUT", f"{track.scheme}://{parsed.netloc or track.netloc}/{urllib.parse.quote(path)}",
                              fh.read(),
                              mimetypes.guess_type(name)[0] or "application/octet-stream")
        else:  # a store this machine shares with the server
            copy_artifact(root, local_path, artifact_path)

    def _artifact_uri(self, run_id: str) -> str:
        with self._artifact_lock:
            if run_id not in self._artifact_uris:
                self._artifact_uris[run_id] = self.get_run(run_id).info.artifact_uri
            return self._artifact_uris[run_id]


def copy_artifact(root: str, local_path: str, artifact_path: str | None) -> None:
    """``local_path`` into a local (``file:`` or plain path) artifact root; any other store raises."""
    parsed = urllib.parse.urlsplit(root)
    if parsed.scheme not in ("", "file"):
        raise RestError(f"artifact store {parsed.scheme}:// is not written without the mlflow library "
                        "(set MLFLOW_CLIENT=library)")
    target = Path(urllib.parse.unquote(parsed.path)) / (artifact_path or "") / Path(local_path).name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(local_path, target)


def _run(raw: dict[str, Any]) -> SimpleNamespace:
    """A run as MlflowClient returns it: .info (run_id, start_time, artifact_uri), .data (tags, params)."""
    info, data = raw.get("info", {}), raw.get("data", {})
    return SimpleNamespace(
        info=SimpleNamespace(run_id=info.get("run_id"), start_time=info.get("start_time"),
                             artifact_uri=info.get("artifact_uri", ""), status=info.get("status")),
        data=SimpleNamespace(tags={t["key"]: t.get("value", "") for t in data.get("tags", [])},
                             params={p["key"]: p.get("value", "") for p in data.get("params", [])}),
    )
