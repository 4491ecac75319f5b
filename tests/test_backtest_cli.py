"""`strategy-runner backtest` as a user runs it: real Freqtrade, bundled data, its own process."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from strategy_runner.artifacts.base import sha256_file

from .conftest import ROOT, runner

SHORT = "20240301-20240315"


def results(env: dict[str, str], run_id: str) -> Path:
    return Path(env["RUNS_DIR"]) / run_id


def status_item(env: dict[str, str], run_id: str) -> dict:
    return json.loads((Path(env["RUNS_DIR"]) / ".status" / f"{run_id}.json").read_text())


def summary(env: dict[str, str], run_id: str) -> dict:
    return json.loads((results(env, run_id) / "backtest-result.json").read_text())


def the_run_id(env: dict[str, str]) -> str:
    (only,) = [p.name for p in Path(env["RUNS_DIR"]).iterdir() if not p.name.startswith(".")]
    return only


def test_zero_variable_run_completes_and_says_where_results_are(run_env):
    proc = runner(run_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_id = the_run_id(run_env)
    out_dir = results(run_env, run_id)
    assert f"run {run_id}: COMPLETED" in proc.stdout
    assert out_dir.resolve().as_uri() in proc.stdout

    s = summary(run_env, run_id)
    assert s["metrics"]["total_trades"] > 0
    assert s["pairs"] == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    for key in ("profit_total", "profit_total_abs", "max_drawdown_account", "sharpe", "sortino", "calmar",
                "cagr", "profit_factor", "expectancy", "wins", "losses", "winrate"):
        assert key in s["metrics"]
    assert {row["pair"] for row in s["per_pair"]} == set(s["pairs"])
    assert len(s["identity"]["data_fingerprint"]) == 64
    assert set(s["identity"]["data_files"]) == {"BTC_USDT-5m.feather", "ETH_USDT-5m.feather", "SOL_USDT-5m.feather"}
    for rel, digest in s["identity"]["data_files"].items():
        assert sha256_file(ROOT / "data" / rel) == digest

    # The results directory: summary, Freqtrade zip, trades, log, manifest with a SHA-256 per file.
    manifest = json.loads((out_dir / "manifest.json").read_text())["files"]
    assert {"backtest-result.json", "trades.csv", "run.log", s["files"]["freqtrade_zip"]} <= set(manifest)
    for rel, entry in manifest.items():
        if rel != "run.log":  # the log keeps growing after the manifest is written
            assert sha256_file(out_dir / rel) == entry["sha256"], rel
    trades = (out_dir / "trades.csv").read_text().splitlines()
    assert len(trades) - 1 == s["metrics"]["total_trades"]

    item = status_item(run_env, run_id)
    assert item["status"] == "COMPLETED" and item["attempt"] == 1
    assert item["results_uri"] == out_dir.resolve().as_uri()

    # Every log line, Freqtrade's included, is JSON with run_id and trace_id.
    lines = [json.loads(line) for line in (out_dir / "run.log").read_text().splitlines()]
    assert any(line["logger"].startswith("freqtrade") for line in lines)
    assert all(line["run_id"] == run_id and line["trace_id"] == item["trace_id"] for line in lines)


def test_same_inputs_give_identical_metrics(run_env):
    env = {**run_env, "TIMERANGE": SHORT, "RESULT_CACHE": "false"}  # both runs really compute
    first = runner({**env, "RUN_ID": "same-1"})
    second = runner({**env, "RUN_ID": "same-2"})
    assert first.returncode == second.returncode == 0, first.stderr[-2000:] + second.stderr[-2000:]
    assert not status_item(env, "same-2").get("cache_hit")
    assert (results(env, "same-1") / "trades.csv").read_bytes() == (results(env, "same-2") / "trades.csv").read_bytes()
    a, b = summary(env, "same-1"), summary(env, "same-2")
    assert a["metrics"]["total_trades"] > 0
    assert a["metrics"] == b["metrics"] and a["per_pair"] == b["per_pair"]
    assert a["identity"]["data_fingerprint"] == b["identity"]["data_fingerprint"]
    assert a["identity"]["config_hash"] == b["identity"]["config_hash"]


def test_futures_strategy_on_futures_pairs(run_env):
    env = {**run_env, "RUN_ID": "fut", "STRATEGY": "EmaCrossFutures", "PAIRS": '["BTC/USDT:USDT"]',
           "TIMERANGE": "20240301-20240415"}
    proc = runner(env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    s = summary(env, "fut")
    assert s["trading_mode"] == "futures" and s["pairs"] == ["BTC/USDT:USDT"]
    assert s["metrics"]["total_trades"] > 0
    assert set(s["identity"]["data_files"]) == {
        "futures/BTC_USDT_USDT-5m-futures.feather",
        "futures/BTC_USDT_USDT-1h-mark.feather",
        "futures/BTC_USDT_USDT-1h-funding_rate.feather",
    }


@pytest.mark.parametrize(
    "timerange,timeframe,start,end",
    [
        ("20240301-20240310", "5m", "2024-03-01", "2024-03-10"),
        ("20241220-", "5m", "2024-12-20", "2025-01-01"),  # open end: up to the last candle
        ("-20231210", "5m", "2023-12-01", "2023-12-10"),  # open start: from the first usable candle
        ("2024-01-01-2024-06-01", "1h", "2024-01-01", "2024-06-01"),  # the seed workflow's States.Format
    ],
)
def test_every_timerange_form_runs(run_env, timerange, timeframe, start, end):
    env = {**run_env, "RUN_ID": "tr", "TIMERANGE": timerange, "TIMEFRAME": timeframe, "PAIRS": "BTC/USDT"}
    proc = runner(env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    s = summary(env, "tr")
    assert s["backtest_start"].startswith(start) or start == "2023-12-01"
    assert s["backtest_end"][:10] <= end


def _last_error(proc) -> str:
    return proc.stderr


@pytest.mark.parametrize(
    "env_update,exit_code,named",
    [
        ({"PAIRS": "BTC/USDT;ETH/USDT"}, 2, "PAIRS='BTC/USDT;ETH/USDT'"),
        ({"TIMERANGE": "20240601-20240101"}, 2, "TIMERANGE='20240601-20240101'"),
        ({"TIMEFRAME": "2m"}, 2, "TIMEFRAME='2m'"),
        ({"STRATEGY": "../strategies/EmaCrossSpot"}, 2, "STRATEGY='../strategies/EmaCrossSpot'"),
        ({"STRATEGY": "NoSuchStrategy"}, 2, "STRATEGY='NoSuchStrategy'"),
        ({"STRATEGY": "EmaCrossSpot", "PAIRS": "BTC/USDT:USDT", "CONFIG": "base.json"}, 2, "PAIRS="),
        ({"PAIRS": "XRP/USDT", "TIMERANGE": SHORT}, 3, "XRP/USDT 5m spot: no data"),
        ({"PAIRS": "BTC/USDT", "TIMERANGE": "20241215-20250115"}, 3,
         "main BTC/USDT 5m spot: asked for 2024-12-14 19:00 to 2025-01-15 00:00"),
    ],
)
def test_bad_input_exits_with_the_documented_code_and_names_it(run_env, env_update, exit_code, named):
    env = {**run_env, "RUN_ID": "bad", **env_update}
    proc = runner(env)
    assert proc.returncode == exit_code, proc.stderr[-3000:]
    assert named in proc.stderr
    item = status_item(env, "bad")
    assert item["status"] == "FAILED"
    assert item["error_type"] == {2: "ValidationError", 3: "DataStaleError"}[exit_code]
    assert named in item["error_message"]
    assert (results(env, "bad") / "run.log").exists()  # the logs are kept


def test_data_error_reports_the_available_range(run_env):
    env = {**run_env, "RUN_ID": "late", "PAIRS": "BTC/USDT", "TIMERANGE": "20241215-20250115"}
    proc = runner(env)
    assert proc.returncode == 3
    assert "available 2023-12-01 00:00 to 2025-01-01 00:00" in status_item(env, "late")["error_message"]


def test_a_completed_run_id_is_not_recomputed(run_env):
    env = {**run_env, "RUN_ID": "once", "TIMERANGE": SHORT, "PAIRS": "BTC/USDT"}
    assert runner(env).returncode == 0
    first = summary(env, "once")
    again = runner(env)
    assert again.returncode == 0
    assert "already completed" in again.stderr
    assert summary(env, "once") == first
    assert status_item(env, "once")["attempt"] == 1


SITECUSTOMIZE = textwrap.dedent(
    """
    import os, sys

    _LOG = os.environ["SOCKET_AUDIT_LOG"]
    _LOOPBACK = ("127.", "::1", "localhost")

    def _audit(event, args):
        if event in ("socket.connect", "socket.getaddrinfo"):
            target = args[1] if event == "socket.connect" else args[0]
            host = target[0] if isinstance(target, tuple) else target
            if isinstance(host, bytes):
                host = host.decode()
            if isinstance(host, str) and (host.startswith(_LOOPBACK) or host.startswith("/")):
                return
            with open(_LOG, "a") as fh:
                fh.write(f"{os.getpid()} {event} {host!r}\\n")
            raise OSError(f"network blocked by test: {event} {host!r}")

    sys.addaudithook(_audit)
    """
)


@pytest.fixture
def audited_env(run_env, tmp_path):
    hook_dir = tmp_path / "hook"
    hook_dir.mkdir()
    (hook_dir / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = tmp_path / "sockets.log"
    return {**run_env, "PYTHONPATH": str(hook_dir), "SOCKET_AUDIT_LOG": str(log)}, log


def test_the_audit_hook_sees_non_loopback_connections(audited_env):
    env, log = audited_env
    probe = "import socket\ntry: socket.create_connection(('192.0.2.1', 9), timeout=0.2)\nexcept OSError: pass"
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", probe], env=env, check=True)
    assert "192.0.2.1" in log.read_text()


def test_a_backtest_opens_no_socket_to_a_non_loopback_address(audited_env):
    env, log = audited_env
    env = {**env, "RUN_ID": "offline", "TIMERANGE": SHORT, "PAIRS": "BTC/USDT", "STRATEGY": "EmaCrossSpot"}
    proc = runner(env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert summary(env, "offline")["metrics"]["total_trades"] > 0
    assert not log.exists(), log.read_text()


def test_a_trace_id_already_on_the_item_is_kept(run_env):
    """The backend wrote PENDING with its trace_id: the run keeps it (logs, item, summary)."""
    status_dir = Path(run_env["RUNS_DIR"]) / ".status"
    status_dir.mkdir(parents=True)
    (status_dir / "traced.json").write_text(json.dumps(
        {"run_id": "traced", "status": "PENDING", "trace_id": "from-backend", "created_at": "2026-01-01T00:00:00.000000Z"}))
    env = {**run_env, "RUN_ID": "traced", "TIMERANGE": SHORT, "PAIRS": "BTC/USDT"}
    proc = runner(env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert status_item(env, "traced")["trace_id"] == "from-backend"
    assert summary(env, "traced")["trace_id"] == "from-backend"
    lines = [json.loads(line) for line in (results(env, "traced") / "run.log").read_text().splitlines()]
    assert {line["trace_id"] for line in lines} == {"from-backend"}
