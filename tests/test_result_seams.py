"""The Freqtrade internals engine.files, engine.result_warnings and engine.backtest rely on
to know what a backtest read and what it warned about. An upgrade that moves one fails here."""

from __future__ import annotations

import inspect
import logging

import pytest

from strategy_runner.engine.files import candle_file
from strategy_runner.engine.result_warnings import WRAPPER_LOGGER, ResultWarnings


@pytest.mark.parametrize("candle_type,timeframe,pair,fmt,expected", [
    ("spot", "5m", "BTC/USDT", "feather", "BTC_USDT-5m.feather"),
    ("futures", "5m", "BTC/USDT:USDT", "feather", "futures/BTC_USDT_USDT-5m-futures.feather"),
    ("mark", "1h", "BTC/USDT:USDT", "feather", "futures/BTC_USDT_USDT-1h-mark.feather"),
    ("funding_rate", "1h", "BTC/USDT:USDT", "feather", "futures/BTC_USDT_USDT-1h-funding_rate.feather"),
    ("spot", "1h", "ETH/BTC", "parquet", "ETH_BTC-1h.parquet"),
    ("", "15m", "BTC/USDT", "feather", "BTC_USDT-15m.feather"),  # "" is the config's default candle type
])
def test_file_names_are_freqtrades_own(candle_type, timeframe, pair, fmt, expected):
    config = {"dataformat_ohlcv": fmt, "candle_type_def": "spot"}
    assert candle_file(config, pair, timeframe, candle_type, "main").relpath == expected


def test_backtest_reads_of_other_series_go_through_historic_ohlcv():
    from freqtrade.data.dataprovider import DataProvider
    from freqtrade.strategy.interface import IStrategy

    source = inspect.getsource(DataProvider.get_pair_dataframe)
    assert "self.historic_ohlcv(pair=pair, timeframe=timeframe, candle_type=candle_type)" in source
    assert list(inspect.signature(DataProvider.historic_ohlcv).parameters) == ["self", "pair", "timeframe", "candle_type"]
    assert "self._ft_informative" in inspect.getsource(IStrategy.gather_informative_pairs)


def test_futures_series_come_from_the_exchange_options_the_engine_reads():
    from freqtrade.exchange.exchange import Exchange
    from freqtrade.optimize.backtesting import Backtesting

    for option in ("mark_ohlcv_timeframe", "mark_ohlcv_price", "funding_fee_timeframe"):
        assert option in Exchange._ft_has_default
        assert f'get_option("{option}")' in inspect.getsource(Backtesting._load_bt_data_detail)


def test_refused_stakes_follow_the_rule_the_counter_repeats():
    from freqtrade.wallets import Wallets

    params = list(inspect.signature(Wallets.validate_stake_amount).parameters)
    assert params[:4] == ["self", "pair", "stake_amount", "min_stake_amount"]
    assert "stake_amount * 1.3 < min_stake_amount" in inspect.getsource(Wallets.validate_stake_amount)


def test_warning_messages_the_counter_recognises():
    from freqtrade.data.history.datahandlers.idatahandler import IDataHandler
    from freqtrade.resolvers import iresolver
    from freqtrade.strategy import strategy_wrapper

    assert strategy_wrapper.logger.name == WRAPPER_LOGGER
    wrapper = inspect.getsource(strategy_wrapper.strategy_safe_wrapper)
    assert "calling {name}" in wrapper and "calling {f}" in wrapper
    assert "f\"Could not import {module_path} due to '{err}'\"" in inspect.getsource(iresolver)
    assert 'f"No history for {pair}, {candle_type}, {timeframe} found. "' in inspect.getsource(
        IDataHandler._check_empty_df)


def test_a_callback_error_is_logged_fully_once_then_thinly_then_only_counted(caplog):
    warnings = ResultWarnings()
    warnings.install()
    logger = logging.getLogger(WRAPPER_LOGGER)
    try:
        for _ in range(50):
            try:
                {}["x"]
            except KeyError as exc:
                logger.exception(f"Unexpected error {exc!r} calling <bound method S.bot_loop_start of <S>>")
        logging.getLogger("freqtrade.data.history.datahandlers.idatahandler").warning(
            "No history for BTC/USDT, spot, 15m found. Use `freqtrade download-data` to download the data")
    finally:
        warnings.uninstall()
    records = [r for r in caplog.records if r.name == WRAPPER_LOGGER]
    assert len(records) == 10 and records[0].exc_info and not any(r.exc_info for r in records[1:])
    summary = warnings.summary()
    assert summary["strategy_callback_error:bot_loop_start"]["count"] == 50
    assert summary["no_data"]["count"] == 1
    assert not logger.filters and warnings not in logging.getLogger("freqtrade").handlers
