"""Markets for an offline backtest: where the exchange's market list comes from.

One resolution order (``resolve``), first hit wins:
1. ``MARKETS_PATH`` (a local file or ``s3://``), if set;
2. a snapshot beside the data, ``DATA_DIR/markets/<exchange>.json`` (travels with DATA_S3_PATH);
3. the bundled snapshot, ``CONFIGS_DIR/markets/<exchange>.json``;
4. with ``MARKETS=infer``, entries built for the pairs no snapshot has (``infer``).
``MARKETS=live`` skips all of it and loads from the exchange. ``snapshot`` reads and validates
the documented file format; ``take`` writes one from a live exchange (``markets snapshot``).
"""

from .snapshot import Snapshot, parse_snapshot
from .sources import MarketsResolution, resolve

__all__ = ["MarketsResolution", "Snapshot", "parse_snapshot", "resolve"]
