"""EMA crossover whose signal lives in a helper module beside it (sr_signals.py)."""

from pandas import DataFrame
from sr_signals import FAST, SLOW, crossed

from freqtrade.strategy import IStrategy


class HelperSignals(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "5m"
    minimal_roi = {"0": 0.03}
    stoploss = -0.03
    startup_candle_count = 60

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["fast"] = dataframe["close"].ewm(span=FAST, adjust=False).mean()
        dataframe["slow"] = dataframe["close"].ewm(span=SLOW, adjust=False).mean()
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe.loc[crossed(dataframe["fast"], dataframe["slow"]), "enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe.loc[crossed(dataframe["slow"], dataframe["fast"]), "exit_long"] = 1
        return dataframe
