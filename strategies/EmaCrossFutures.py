"""Long/short EMA crossover for USDT-margined perpetual futures, 2x leverage."""

import talib.abstract as ta
from pandas import DataFrame

from freqtrade.strategy import IStrategy, IntParameter


class EmaCrossFutures(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "5m"
    can_short = True
    minimal_roi = {"0": 0.05, "480": 0.02, "1440": 0}
    stoploss = -0.04
    process_only_new_candles = True
    startup_candle_count = 60

    fast = IntParameter(5, 30, default=12, space="buy")
    slow = IntParameter(20, 60, default=48, space="buy")

    def leverage(self, pair: str, current_time, current_rate: float, proposed_leverage: float,
                 max_leverage: float, entry_tag, side: str, **kwargs) -> float:
        return min(2.0, max_leverage)

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["ema_fast"] = ta.EMA(dataframe, timeperiod=self.fast.value)
        dataframe["ema_slow"] = ta.EMA(dataframe, timeperiod=self.slow.value)
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        above = dataframe["ema_fast"] > dataframe["ema_slow"]
        was_above = dataframe["ema_fast"].shift(1) > dataframe["ema_slow"].shift(1)
        dataframe.loc[above & ~was_above, "enter_long"] = 1
        dataframe.loc[~above & was_above, "enter_short"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        above = dataframe["ema_fast"] > dataframe["ema_slow"]
        was_above = dataframe["ema_fast"].shift(1) > dataframe["ema_slow"].shift(1)
        dataframe.loc[~above & was_above, "exit_long"] = 1
        dataframe.loc[above & ~was_above, "exit_short"] = 1
        return dataframe
