"""A 5m strategy reading BTC/USDT 15m as an informative pair, declared in informative_pairs()
(the pattern of Freqtrade's documentation and freqtrade-strategies' InformativeSample)."""

import talib.abstract as ta
from pandas import DataFrame

from freqtrade.strategy import IStrategy, merge_informative_pair


class InformativeBtc15m(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "5m"
    minimal_roi = {"60": 0.01, "30": 0.03, "0": 0.05}
    stoploss = -0.10
    startup_candle_count = 50

    def informative_pairs(self):
        return [("BTC/USDT", "15m")]

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["ema20"] = ta.EMA(dataframe, timeperiod=20)
        dataframe["ema50"] = ta.EMA(dataframe, timeperiod=50)
        informative = self.dp.get_pair_dataframe(pair="BTC/USDT", timeframe="15m")
        informative["sma20"] = informative["close"].rolling(20).mean()
        return merge_informative_pair(dataframe, informative, self.timeframe, "15m", ffill=True)

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe.loc[(dataframe["ema20"] > dataframe["ema50"]) & (dataframe["close_15m"] > dataframe["sma20_15m"]),
                      "enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe.loc[(dataframe["ema20"] < dataframe["ema50"]) & (dataframe["close_15m"] < dataframe["sma20_15m"]),
                      "exit_long"] = 1
        return dataframe
