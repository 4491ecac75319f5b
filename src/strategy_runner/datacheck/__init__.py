"""Candle files checked before Freqtrade reads them: ``check_candles`` (pure file work, no Freqtrade).

Policy (docs/results.md, "Data checks"): a file that cannot be read, holds no candles in the range,
or has a non-finite or non-positive price, a negative or non-finite volume, or high < low,
is a DataError (DataStaleError) naming the file and the first bad row. Duplicate dates
(Freqtrade keeps one candle per date) and gaps (Freqtrade fills them with flat, zero-volume
candles) are counted and reported, not refused.
"""

from .candles import CandleQuality, check_candles

__all__ = ["CandleQuality", "check_candles"]
