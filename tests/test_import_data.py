"""`strategy-runner import-data`: CSV candles into Freqtrade's layout, checked row by row."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from strategy_runner.cli import main
from strategy_runner.errors import DataError
from strategy_runner.importer.csv_candles import read_candles

HOURLY = """Date,Open,High,Low,Close,Volume,Adj Close
2024-01-02 00:00:00,1.10412,1.10472,1.10390,1.10455,1523,0
2024-01-02 01:00:00,1.10455,1.10501,1.10433,1.10480,1388,0
2024-01-02 02:00:00,1.10480,1.10480,1.10302,1.10331,2110,0
"""


def csv(tmp_path: Path, text: str, name: str = "candles.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_csv_becomes_a_feather_file_freqtrade_loads(tmp_path: Path, capsys) -> None:
    from freqtrade.data.history import load_pair_history

    data = tmp_path / "data"
    assert main(["import-data", str(csv(tmp_path, HOURLY)), "--pair", "EUR/USD", "--timeframe", "1h",
                 "--data-dir", str(data)]) == 0
    assert (data / "EUR_USD-1h.feather").is_file()
    assert "3 candles of EUR/USD 1h" in capsys.readouterr().out
    loaded = load_pair_history(pair="EUR/USD", timeframe="1h", datadir=data, data_format="feather")
    assert list(loaded["close"]) == [1.10455, 1.10480, 1.10331]
    assert str(loaded["date"].dt.tz) == "UTC" and loaded["date"].iloc[0] == pd.Timestamp("2024-01-02", tz="UTC")


def test_jsongz_and_futures_layouts(tmp_path: Path) -> None:
    from freqtrade.data.history import load_pair_history
    from freqtrade.enums import CandleType

    data = tmp_path / "data"
    assert main(["import-data", str(csv(tmp_path, HOURLY)), "--pair", "GOOG/USDT:USDT", "--timeframe", "1h",
                 "--data-dir", str(data), "--data-format", "jsongz"]) == 0
    assert (data / "futures" / "GOOG_USDT_USDT-1h-futures.json.gz").is_file()
    loaded = load_pair_history(pair="GOOG/USDT:USDT", timeframe="1h", datadir=data, data_format="jsongz",
                               candle_type=CandleType.FUTURES)
    assert len(loaded) == 3


@pytest.mark.parametrize("text", [
    # Dukascopy's export: day first, dotted, milliseconds
    "Gmt time,Open,High,Low,Close,Volume\n02.01.2024 00:00:00.000,1.1,1.2,1.0,1.15,10\n"
    "02.01.2024 01:00:00.000,1.15,1.2,1.1,1.12,11\n",
    # epoch milliseconds, lower-case short names
    "timestamp,o,h,l,c,v\n1704153600000,1.1,1.2,1.0,1.15,10\n1704157200000,1.15,1.2,1.1,1.12,11\n",
    # epoch seconds, ISO with a zone
    "time,open,high,low,close,tick volume\n1704153600,1.1,1.2,1.0,1.15,10\n1704157200,1.15,1.2,1.1,1.12,11\n",
    "datetime,open,high,low,close,volume\n2024-01-02T00:00:00Z,1.1,1.2,1.0,1.15,10\n2024-01-02T01:00:00Z,1.15,1.2,1.1,1.12,11\n",
])
def test_common_spellings_and_date_formats(tmp_path: Path, text: str) -> None:
    frame = read_candles(csv(tmp_path, text), "1h")
    assert list(frame["date"]) == [pd.Timestamp("2024-01-02 00:00", tz="UTC"), pd.Timestamp("2024-01-02 01:00", tz="UTC")]
    assert list(frame.columns) == ["date", "open", "high", "low", "close", "volume"]


HEADER = "date,open,high,low,close,volume\n"
GOOD = "2024-01-02 00:00,10,11,9,10.5,100\n"


@pytest.mark.parametrize(("rows", "expected"), [
    (GOOD + "2024-01-02 00:00,10,11,9,10.5,100\n", "row 3 (2024-01-02 00:00): the same date as the row before"),
    ("2024-01-02 01:00,10,11,9,10.5,100\n" + GOOD, "row 3 (2024-01-02 00:00): earlier than the row before"),
    (GOOD + "2024-01-02 01:00,10,11,-9,10.5,100\n", "row 3 (2024-01-02 01:00): a price is not positive"),
    (GOOD + "2024-01-02 01:00,10,9,11,10.5,100\n", "row 3 (2024-01-02 01:00): high is below open, close or low"),
    (GOOD + "2024-01-02 01:00,10,11,10.6,10.5,100\n", "row 3 (2024-01-02 01:00): low is above open or close"),
    (GOOD + "2024-01-02 01:00,10,11,9,,100\n", "row 3 (2024-01-02 01:00): a price is missing or not a number"),
    (GOOD + "2024-01-02 01:00,10,11,9,10.5,-1\n", "row 3 (2024-01-02 01:00): volume is missing or negative"),
    (GOOD + "2024-01-02 01:30,10,11,9,10.5,100\n", "row 3 (2024-01-02 01:30): not on the 1h grid"),
    (GOOD + "yesterday,10,11,9,10.5,100\n", "row 3: 'yesterday' is not a date"),
])
def test_a_bad_row_is_named(tmp_path: Path, rows: str, expected: str) -> None:
    with pytest.raises(DataError) as caught:
        read_candles(csv(tmp_path, HEADER + rows), "1h")
    assert expected in str(caught.value) and "candles.csv" in str(caught.value)


@pytest.mark.parametrize(("text", "expected"), [
    ("when,open,high,low,close,volume\n1,1,1,1,1,1\n", "no date column"),
    ("date,open,high,low,close\n2024-01-02,1,1,1,1\n", "no volume column"),
    (HEADER, "has a header but no candles"),
    ("", "not a readable CSV"),
])
def test_a_file_that_is_not_candles_is_refused(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(DataError, match=expected):
        read_candles(csv(tmp_path, text), "1h")


def test_bad_arguments_name_the_option(tmp_path: Path, capsys) -> None:
    path = csv(tmp_path, HOURLY)
    assert main(["import-data", str(path), "--pair", "eurusd", "--timeframe", "1h", "--data-dir", str(tmp_path)]) == 2
    assert "--pair 'eurusd'" in capsys.readouterr().err
    assert main(["import-data", str(path), "--pair", "EUR/USD", "--timeframe", "7x", "--data-dir", str(tmp_path)]) == 2
    assert "--timeframe '7x'" in capsys.readouterr().err
