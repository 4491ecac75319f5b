"""One engine backtest in its own process, with engine.lean_memory or Freqtrade's own path.

    python -m tests.lean_memory_driver lean|stock

The settings come from the environment (as in the worker); results land in the run directory
(trades.csv, freqtrade-report.txt, the Freqtrade zip, run.log) and the result's figures on stdout.
"""

from __future__ import annotations

import json
import sys

from strategy_runner import logs
from strategy_runner.engine import backtest, lean_memory
from strategy_runner.settings import load_settings
from strategy_runner.worker import build_spec


def main(mode: str) -> int:
    if mode == "stock":
        lean_memory.install = lambda: False  # the hook in engine.backtest calls it by this name
    settings = load_settings()
    logs.configure("json", "INFO", settings.run_dir / "run.log")  # as the worker: off stdout
    work_dir = settings.run_dir / ".driver"
    work_dir.mkdir(parents=True, exist_ok=True)
    result = backtest.run(build_spec(settings, work_dir), on_progress=lambda *_: None, stop=lambda: False)
    print(json.dumps({"metrics": result.metrics, "per_pair": result.per_pair, "pairs": result.pairs,
                      "backtest_start": result.backtest_start, "backtest_end": result.backtest_end,
                      "freqtrade_zip": result.freqtrade_zip}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
