"""The candle files Freqtrade reads for one backtest, from the Backtesting object itself.

Before the data load (``planned_files``): the whitelist at the timeframe, ``timeframe_detail``,
futures mark and funding series (the exchange's own timeframes and mark price type), and
the strategy's declared informatives (``informative_pairs()`` and ``@informative``, through
Freqtrade's ``gather_informative_pairs``). While it runs (``LoadRecorder``): every series the
strategy asks the DataProvider for, declared or not (``dp.get_pair_dataframe`` in
``populate_indicators``). The union is what the run is checked, fingerprinted and keyed on.

Freqtrade internals used (pinned version, tests/test_result_seams.py): the data handler's
``_pair_data_filename`` (the file name for a pair, timeframe and candle type),
``DataProvider.historic_ohlcv`` (every backtest read of a non-main series goes through it),
``IStrategy.gather_informative_pairs`` and the exchange options ``mark_ohlcv_timeframe``,
``mark_ohlcv_price`` and ``funding_fee_timeframe``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .data import CandleFile


def candle_file(config: dict[str, Any], pair: str, timeframe: str, candle_type: Any, role: str) -> CandleFile:
    from freqtrade.data.history.datahandlers.idatahandler import get_datahandlerclass
    from freqtrade.enums import CandleType

    ctype = CandleType.from_string(str(candle_type)) if str(candle_type) else CandleType(config["candle_type_def"])
    handler = get_datahandlerclass(config.get("dataformat_ohlcv", "feather"))
    rel = handler._pair_data_filename(Path("."), pair, str(timeframe), ctype)
    return CandleFile(pair, str(timeframe), str(ctype.value), str(rel), role)


def planned_files(bt: Any) -> tuple[list[CandleFile], str | None]:
    """What Freqtrade will read, and why the declared informatives are unknown (None: known)."""
    config = bt.config
    main_type = config.get("candle_type_def", "spot")
    pairs = list(bt.pairlists.whitelist)
    files = [candle_file(config, p, bt.timeframe, main_type, "main") for p in pairs]
    if bt.timeframe_detail:
        files += [candle_file(config, p, bt.timeframe_detail, main_type, "detail") for p in pairs]
    if str(bt.trading_mode.value) == "futures":
        ex = bt.exchange
        files += [candle_file(config, p, ex.get_option("mark_ohlcv_timeframe"), ex.get_option("mark_ohlcv_price"),
                              "mark") for p in pairs]
        files += [candle_file(config, p, ex.get_option("funding_fee_timeframe"), "funding_rate", "funding_rate")
                  for p in pairs]
    unknown = None
    strategy = bt.strategylist[0]
    strategy.dp = bt.dataprovider  # what Backtesting sets before the strategy runs
    try:
        declared = strategy.gather_informative_pairs()
    except Exception as exc:  # noqa: BLE001 - plain Freqtrade never calls it in a backtest
        declared = []
        unknown = f"informative_pairs() raised {type(exc).__name__}: {exc}"
    return _unique(files + [candle_file(config, p, tf, ct, "informative") for p, tf, ct in declared]), unknown


def _unique(files: list[CandleFile]) -> list[CandleFile]:
    seen: dict[str, CandleFile] = {}
    for f in files:
        seen.setdefault(f.relpath, f)  # a main file a strategy also declares stays main
    return list(seen.values())


class LoadRecorder:
    """Wraps the DataProvider's backtest reads: ``on_first_read(file)`` once per series."""

    def __init__(self, bt: Any, on_first_read: Callable[[CandleFile], None]):
        self.files: dict[str, CandleFile] = {}
        dp = bt.dataprovider
        original = dp.historic_ohlcv
        config = bt.config

        def historic_ohlcv(pair: str, timeframe: str, candle_type: str = "") -> Any:
            f = candle_file(config, pair, str(timeframe), candle_type, "informative")
            if f.relpath not in self.files:
                self.files[f.relpath] = f
                on_first_read(f)
            return original(pair, timeframe, candle_type)

        dp.historic_ohlcv = historic_ohlcv  # the instance's: get_pair_dataframe calls self.historic_ohlcv
