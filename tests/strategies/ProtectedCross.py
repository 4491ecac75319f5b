"""EMA crossover with a cooldown protection (Freqtrade's protections property)."""

from pandas import DataFrame

from freqtrade.strategy import IStrategy


class ProtectedCross(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "5m"
    minimal_roi = {"0": 0.01}
    stoploss = -0.01
    startup_candle_count = 60

    @property
    def protections(self):
        return [{"method": "CooldownPeriod", "stop_duration_candles": 48}]

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["fast"] = dataframe["close"].ewm(span=6, adjust=False).mean()
        dataframe["slow"] = dataframe["close"].ewm(span=24, adjust=False).mean()
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        up = (dataframe["fast"] > dataframe["slow"]) & (dataframe["fast"].shift(1) <= dataframe["slow"].shift(1))
        dataframe.loc[up, "enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        down = (dataframe["fast"] < dataframe["slow"]) & (dataframe["fast"].shift(1) >= dataframe["slow"].shift(1))
        dataframe.loc[down, "exit_long"] = 1
        return dataframe
