"""A 5m strategy reading SOL/USDT 1h through the DataProvider without declaring it in
informative_pairs() (Freqtrade allows this in a backtest)."""

from pandas import DataFrame

from freqtrade.strategy import IStrategy, merge_informative_pair


class UndeclaredInformative(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "5m"
    minimal_roi = {"0": 0.03}
    stoploss = -0.03
    startup_candle_count = 30

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["ema"] = dataframe["close"].ewm(span=20, adjust=False).mean()
        sol = self.dp.get_pair_dataframe("SOL/USDT", "1h")
        sol["sol_up"] = sol["close"] > sol["close"].shift(1)
        return merge_informative_pair(dataframe, sol[["date", "sol_up"]], self.timeframe, "1h", ffill=True)

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe.loc[(dataframe["close"] > dataframe["ema"]) & (dataframe["sol_up_1h"] == True), "enter_long"] = 1  # noqa: E712
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe.loc[dataframe["close"] < dataframe["ema"], "exit_long"] = 1
        return dataframe
