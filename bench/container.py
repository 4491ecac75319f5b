"""The image: its size, and how long a container takes from `docker run` to RUNNING.

    python bench/container.py [--repeat 3] [--no-build]

Needs a Docker engine (on these machines: `bash ../shared/container-lab/up.sh`). Builds the
image from the Dockerfile (the classic builder, as `docker build` does here) unless --no-build,
then prints side by side, in one run:
- the image size and its largest layers;
- container start -> RUNNING in the status store (the local store in a mounted runs folder),
  -> the worker's first line, -> exit, for a one-pair two-week backtest;
- the same backtest with plain Freqtrade inside the same image (its own CLI, the runner's
  offline markets seam as in bench/plain_freqtrade.py): wall time from `docker run` to exit.
Writes bench/out/container-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "strategy-runner:bench"
RUN = {"PAIRS": "BTC/USDT", "TIMERANGE": "20241101-20241115", "TRACKING": "false", "RESULT_CACHE": "false"}


def docker(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True, **kwargs)


def iso_seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def runner_once(runs: Path, run_id: str) -> dict[str, float]:
    env = [a for k, v in {**RUN, "RUN_ID": run_id}.items() for a in ("-e", f"{k}={v}")]
    started = time.time()
    docker("run", "--rm", "-v", f"{runs}:/app/runs", *env, IMAGE)
    ended = time.time()
    item = json.loads((runs / ".status" / f"{run_id}.json").read_text())
    lines = [json.loads(line) for line in (runs / run_id / "run.log").read_text().splitlines() if line.startswith("{")]
    worker = next(iso_seconds(line["timestamp"]) for line in lines if line.get("process") == "worker")
    return {"start_to_running_s": iso_seconds(item["started_at"]) - started,
            "start_to_worker_s": worker - started, "wall_s": ended - started}


def plain_once() -> float:
    """Plain Freqtrade's own CLI in the same image, on the bundled config, data and strategy."""
    script = (ROOT / "bench" / "plain_freqtrade.py").read_text()
    started = time.time()
    docker("run", "--rm", "-i", "--entrypoint", "python", IMAGE, "-", "/app/configs/markets/binance.json",
           "backtesting", "--config", "/app/configs/base.json", "--strategy", "EmaCrossSpot", "--strategy-path",
           "/app/strategies", "--datadir", "/app/data", "--userdir", "/app/runs", "--cache", "none",
           "--export", "none", "--pairs", RUN["PAIRS"], "--timeframe", "5m", "--timerange", RUN["TIMERANGE"],
           input=script)
    return time.time() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args()
    if not args.no_build:
        docker("build", "-t", IMAGE, str(ROOT), timeout=3600)
    size_mb = int(docker("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout) / 1e6
    layers = [line.split("\t") for line in docker("history", "--format", "{{.Size}}\t{{.CreatedBy}}", IMAGE)
              .stdout.splitlines()]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "runs"
        folder.mkdir()
        folder.chmod(0o777)  # the image's user (10001) writes there
        runs = [runner_once(folder, f"bench-{i}") for i in range(args.repeat)]
        plain = [plain_once() for _ in range(args.repeat)]
    median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    print(f"image {IMAGE}: {size_mb:.0f} MB (budget 800 MB)")
    for size, created in sorted(layers, key=lambda l: -_bytes(l[0]))[:3]:
        print(f"  layer {size:>8}  {created[:90]}")
    print(f"median of {args.repeat}, 1 pair x 2 weeks of 5m:")
    print(f"  docker run -> RUNNING in the store   {median['start_to_running_s']:6.2f} s")
    print(f"  docker run -> first worker line      {median['start_to_worker_s']:6.2f} s")
    print(f"  docker run -> exit, runner           {median['wall_s']:6.2f} s")
    print(f"  docker run -> exit, plain Freqtrade  {statistics.median(plain):6.2f} s")
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"container-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json").write_text(json.dumps(
        {"image_mb": size_mb, "runner": runs, "plain_wall_s": plain}, indent=2))
    return 0


def _bytes(size: str) -> float:
    units = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}
    for unit in ("kB", "MB", "GB", "B"):
        if size.endswith(unit):
            return float(size[: -len(unit)]) * units[unit]
    return 0.0


if __name__ == "__main__":
    raise SystemExit(main())
