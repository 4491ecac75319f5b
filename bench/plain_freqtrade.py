"""Plain ``freqtrade`` for the benchmark: the same offline markets as the runner, nothing else.

    python bench/plain_freqtrade.py MARKETS_SNAPSHOT backtesting --config ... (freqtrade's own arguments)

Installs the runner's markets seam (engine.offline.serve_markets_offline) so both sides load
markets the same way with no network, then hands over to Freqtrade's own CLI ``main``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from strategy_runner.engine.offline import load_snapshot, serve_markets_offline  # noqa: E402

serve_markets_offline(load_snapshot(Path(sys.argv[1])))

from freqtrade.main import main  # noqa: E402

main(sys.argv[2:])
