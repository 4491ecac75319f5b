"""EMA crossover whose bot_loop_start raises on every candle (as strategies written for
older pandas do): Freqtrade logs the error and carries on."""

from pandas import DataFrame

from freqtrade.strategy import IStrategy


class RaisingCallback(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "5m"
    minimal_roi = {"0": 0.03}
    stoploss = -0.03
    startup_candle_count = 60

    def bot_loop_start(self, current_time, **kwargs) -> None:
        {}["no such column"]  # a KeyError every candle

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["fast"] = dataframe["close"].ewm(span=12, adjust=False).mean()
        dataframe["slow"] = dataframe["close"].ewm(span=48, adjust=False).mean()
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        up = (dataframe["fast"] > dataframe["slow"]) & (dataframe["fast"].shift(1) <= dataframe["slow"].shift(1))
        dataframe.loc[up, "enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        down = (dataframe["fast"] < dataframe["slow"]) & (dataframe["fast"].shift(1) >= dataframe["slow"].shift(1))
        dataframe.loc[down, "exit_long"] = 1
        return dataframe
