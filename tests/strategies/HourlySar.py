"""A strategy that declares timeframe = "1h" (a parabolic SAR flip, like freqtrade-strategies' PSAR ones)."""

import talib.abstract as ta
from pandas import DataFrame

from freqtrade.strategy import IStrategy


class HourlySar(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "1h"
    minimal_roi = {"0": 0.10}
    stoploss = -0.05
    startup_candle_count = 30

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["sar"] = ta.SAR(dataframe)
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        flip_up = (dataframe["close"] > dataframe["sar"]) & (dataframe["close"].shift(1) <= dataframe["sar"].shift(1))
        dataframe.loc[flip_up, "enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe.loc[dataframe["close"] < dataframe["sar"], "exit_long"] = 1
        return dataframe
