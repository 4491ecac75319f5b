"""Memory limit discovery against fake cgroup trees and a real ECS metadata endpoint on
loopback; the pre-flight estimate against the bundled candle files."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from strategy_runner.guard import estimate as est
from strategy_runner.guard.memory import MemoryWatch, discover_limit, tree_rss_mb
from strategy_runner.identity import ecs_task_metadata

GIB = 1024**3
PHYSICAL = 24 * GIB
ROOT = Path(__file__).resolve().parents[2]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def fake(tmp_path: Path):
    """A fake /sys/fs/cgroup and /proc/self/cgroup under tmp_path."""
    root = tmp_path / "cgroup"
    proc = tmp_path / "proc-self-cgroup"

    def limit(**kw):
        return discover_limit(kw.pop("override", None), cgroup_root=root, proc_cgroup=proc,
                              physical_bytes=PHYSICAL, **kw)

    return root, proc, limit


def test_override_wins_over_everything(fake):
    root, proc, limit = fake
    write(proc, "0::/\n")
    write(root / "memory.max", str(1 * GIB))
    assert limit(override=512) .mb == 512 and limit(override=512).source == "MEMORY_LIMIT_MB"


def test_cgroup_v2_memory_max(fake):
    root, proc, limit = fake
    write(proc, "0::/\n")
    write(root / "memory.max", str(2 * GIB))
    got = limit()
    assert got.mb == 2048 and got.source.startswith("cgroup v2") and "memory.max" in got.source


def test_cgroup_v2_max_means_unlimited_and_an_ancestor_limit_counts(fake):
    root, proc, limit = fake
    write(proc, "0::/ecs/task/container\n")
    write(root / "ecs/task/container/memory.max", "max")
    write(root / "ecs/task/memory.max", str(3 * GIB))
    assert limit().mb == 3072
    write(root / "ecs/task/memory.max", "max")
    got = limit()
    assert got.mb == 24 * 1024 and got.source.startswith("physical memory") and "unlimited" in got.source


def test_cgroup_v1_limit_and_its_huge_unlimited_value(fake):
    root, proc, limit = fake
    write(proc, "4:memory:/docker/abc\n0::/\n")
    write(root / "memory/memory.limit_in_bytes", str(1536 * 1024 * 1024))  # the container's own mount root
    got = limit()
    assert got.mb == 1536 and got.source.startswith("cgroup v1")
    write(root / "memory/memory.limit_in_bytes", "9223372036854771712")
    assert limit().source.startswith("physical memory (cgroup v1 memory.limit_in_bytes: unlimited)")


def test_ecs_task_metadata_through_a_real_endpoint(fake):
    root, proc, limit = fake
    write(proc, "0::/\n")
    write(root / "memory.max", "max")  # Fargate: the container cgroup may be unlimited

    class Metadata(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = json.dumps({"TaskARN": "arn:aws:ecs:us-east-1:1:task/x", "Limits": {"CPU": 1, "Memory": 2048}})
            self.send_response(200 if self.path == "/v4/abc/task" else 404)
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Metadata)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        uri = f"http://127.0.0.1:{server.server_port}/v4/abc"
        got = limit(ecs_task=lambda: ecs_task_metadata(uri))
    finally:
        server.shutdown()
    assert got.mb == 2048 and got.source == "ECS task metadata Limits.Memory"


def test_physical_memory_when_nothing_else_is_there(fake):
    _, _, limit = fake
    got = limit()
    assert got.mb == 24 * 1024 and got.source == "physical memory"


def test_this_machine_gives_a_plausible_limit():
    got = discover_limit(None)
    assert got.mb > 256 and got.source


def test_the_watch_sees_this_process_and_keeps_the_peak():
    import os

    first = tree_rss_mb(os.getpid())
    low = MemoryWatch(discover_limit(int(first * 0.5)), 90.0, os.getpid())
    high = MemoryWatch(discover_limit(int(first * 4)), 90.0, os.getpid())
    assert low.sample() == pytest.approx(first, rel=0.2) and high.sample() == pytest.approx(first, rel=0.2)
    assert low.over() and not high.over()
    ballast = bytearray(os.urandom(64 * 2**20))  # 64 MiB touched
    assert high.sample() > first + 50 and high.peak_mb == high.last_mb
    del ballast
    high.sample()
    assert high.peak_mb >= high.last_mb


# --- the pre-flight estimate -------------------------------------------------------------

PAIRS_80 = [f"P{i:02d}/USDT" for i in range(80)]  # a closed range is counted, not read: no files needed


def test_estimate_grows_with_pairs_and_range():
    data = ROOT / "data"
    one = est.estimate_peak(["BTC/USDT"], "5m", "20240101-20240201", "spot", data)
    year = est.estimate_peak(["BTC/USDT"], "5m", "20240101-20250101", "spot", data)
    three = est.estimate_peak(["BTC/USDT", "ETH/USDT", "SOL/USDT"], "5m", "20240101-20250101", "spot", data)
    assert one.main_candles == 31 * 288 and year.main_candles == 366 * 288
    assert one.mb == year.mb == three.mb == est.FLOOR_MB  # small runs: the fixed costs
    assert three.pair_years == pytest.approx(3 * 366 / 365)
    forty = est.estimate_peak(PAIRS_80[:40], "5m", "20240101-20250101", "spot", data)
    eighty = est.estimate_peak(PAIRS_80, "5m", "20240101-20250101", "spot", data)
    nine_months = est.estimate_peak(PAIRS_80, "5m", "20240101-20241001", "spot", data)
    assert est.FLOOR_MB < forty.mb < nine_months.mb < eighty.mb
    assert eighty.mb - est.BASE_MB == pytest.approx(2 * (forty.mb - est.BASE_MB))


def test_futures_count_mark_and_funding_and_open_ranges_use_the_files():
    data = ROOT / "data"
    spotlike = est.estimate_peak(["BTC/USDT:USDT"], "5m", "20240101-20240601", "futures", data)
    assert spotlike.extra_rows == 2 * 152 * 24  # 1h mark + funding (read hourly) over 152 days
    open_end = est.estimate_peak(["BTC/USDT"], "5m", "20240101-", "spot", data)
    assert open_end.main_candles == 366 * 288  # the bundled data ends 2025-01-01


def test_refusal_needs_a_clear_margin_and_advice_names_the_fixes():
    guess = est.estimate_peak(PAIRS_80, "5m", "20240101-20250101", "spot", ROOT / "data")
    assert not est.refuses(guess, guess.mb)  # at the limit: the runtime guard decides
    assert not est.refuses(guess, guess.mb / est.REFUSE_FACTOR + 1)
    assert est.refuses(guess, guess.mb / est.REFUSE_FACTOR - 1)
    advice = est.advice(guess, 1000)
    assert "pair(s)" in advice and "days" in advice and "more memory" in advice
    # What the advice says fits does fit: that many pairs, or that range, estimates under the limit.
    fit_pairs = int(advice.split("run at most ")[1].split(" pair(s)")[0])
    fit_days = int(advice.split("at most ~")[1].split(" days")[0])
    assert est.estimate_peak(PAIRS_80[:fit_pairs], "5m", "20240101-20250101", "spot", ROOT / "data").mb <= 1000
    assert est.estimate_peak(PAIRS_80[:fit_pairs + 1], "5m", "20240101-20250101", "spot", ROOT / "data").mb > 1000
    ranged = est.estimate_peak(PAIRS_80, "5m", f"20240101-{(datetime(2024, 1, 1) + timedelta(days=fit_days)):%Y%m%d}",
                               "spot", ROOT / "data")
    assert ranged.mb <= 1000
    # Under the fixed costs nothing fits: the advice says so instead of naming a pair count.
    below = est.advice(guess, est.FLOOR_MB - 100)
    assert "no backtest fits" in below and "at most 0 pair(s)" in below and "more memory" in below


def test_the_constants_reproduce_the_recorded_calibration():
    for pairs, days, measured in est.CALIBRATION:
        modelled = max(est.FLOOR_MB, est.BASE_MB + est.MB_PER_100K_CANDLES * pairs * days * 288 / 100_000)
        assert modelled == pytest.approx(measured, rel=0.10), (pairs, days, measured)


def test_the_mlflow_library_beside_the_start_raises_the_floor_only():
    data = ROOT / "data"
    small = est.estimate_peak(["BTC/USDT"], "5m", "20240101-20240201", "spot", data, beside_mb=230)
    large = est.estimate_peak(PAIRS_80, "5m", "20240101-20250101", "spot", data, beside_mb=230)
    assert small.mb == est.FLOOR_MB + 230
    assert large.mb == est.estimate_peak(PAIRS_80, "5m", "20240101-20250101", "spot", data).mb  # gone by the peak
