"""Markets for offline backtests: the snapshot format, the resolution order, inference, snapshots
taken through ccxt (fed recorded markets: no network)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from strategy_runner.errors import ConfigurationError, DataError, ValidationError
from strategy_runner.markets import parse_snapshot, resolve
from strategy_runner.markets.infer import infer_market
from strategy_runner.markets.take import take

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "configs" / "markets" / "binance.json"


def bundled() -> dict:
    return json.loads(BUNDLED.read_text())


def write(path: Path, doc: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def test_the_bundled_snapshot_is_valid_and_fingerprinted() -> None:
    snapshot = parse_snapshot(BUNDLED.read_bytes(), str(BUNDLED))
    assert snapshot.exchange == "binance" and "BTC/USDT" in snapshot.markets and "BTC/USDT:USDT" in snapshot.markets
    assert len(snapshot.sha256) == 64


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda d: d.pop("exchange"), "'exchange' (the ccxt id"),
    (lambda d: d.update(markets={}), "has no 'markets' object"),
    (lambda d: d["markets"]["BTC/USDT"].pop("precision"), "market 'BTC/USDT': missing precision"),
    (lambda d: d["markets"]["BTC/USDT"]["precision"].update(price=0), "precision.price must be a positive tick"),
    (lambda d: d["markets"]["BTC/USDT"].update(type="margin"), "type 'margin' is not one of"),
    (lambda d: d["markets"]["BTC/USDT:USDT"].update(settle=None), "a swap/future needs settle and contractSize"),
    (lambda d: d["markets"].update({"ETH/BTC": d["markets"]["BTC/USDT"]}), "its symbol is 'BTC/USDT'"),
])
def test_a_broken_snapshot_is_refused_naming_the_file_and_the_problem(tmp_path: Path, edit, expected: str) -> None:
    doc = bundled()
    edit(doc)
    path = write(tmp_path / "m.json", doc)
    with pytest.raises(ConfigurationError, match="m.json") as caught:
        parse_snapshot(path.read_bytes(), str(path))
    assert expected in str(caught.value)


def test_not_json_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="is not valid JSON"):
        parse_snapshot(b"{markets", "x.json")


def dirs(tmp_path: Path) -> dict:
    return {"data_dir": tmp_path / "data", "configs_dir": tmp_path / "configs"}


def only(doc: dict, *symbols: str) -> dict:
    return {**doc, "markets": {s: doc["markets"][s] for s in symbols}}


def test_resolution_order_markets_path_then_data_dir_then_configs_dir(tmp_path: Path) -> None:
    places = dirs(tmp_path)
    configs = write(tmp_path / "configs" / "markets" / "binance.json", only(bundled(), "BTC/USDT", "ETH/USDT"))
    assert resolve("binance", ["BTC/USDT"], **places).snapshot.origin == str(configs)
    beside = write(tmp_path / "data" / "markets" / "binance.json", only(bundled(), "BTC/USDT"))
    found = resolve("binance", ["BTC/USDT"], **places)
    assert found.snapshot.origin == str(beside) and found.looked == (str(beside), str(configs))
    chosen = write(tmp_path / "elsewhere.json", only(bundled(), "SOL/USDT"))
    found = resolve("binance", ["SOL/USDT"], markets_path=str(chosen), **places)
    assert found.snapshot.origin == str(chosen) and found.describe()["sha256"] == found.snapshot.sha256


def test_a_markets_path_that_does_not_exist_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="MARKETS_PATH='/nope.json': no such file"):
        resolve("binance", ["BTC/USDT"], markets_path="/nope.json", **dirs(tmp_path))


def test_a_markets_path_on_s3_is_read_through_the_fetcher(tmp_path: Path) -> None:
    raw = BUNDLED.read_bytes()
    asked: list[str] = []
    found = resolve("binance", ["BTC/USDT"], markets_path="s3://bucket/markets/binance.json",
                    fetch=lambda uri: asked.append(uri) or raw, **dirs(tmp_path))
    assert asked == ["s3://bucket/markets/binance.json"] and found.snapshot.origin == asked[0]


def test_a_snapshot_of_another_exchange_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "configs" / "markets" / "kraken.json", bundled())  # Binance's markets copied for kraken
    with pytest.raises(ConfigurationError, match="is for 'binance' but the config's exchange is 'kraken'"):
        resolve("kraken", ["BTC/USDT"], **dirs(tmp_path))


def test_a_pair_no_source_has_names_the_pair_the_exchange_and_every_place_looked(tmp_path: Path) -> None:
    write(tmp_path / "configs" / "markets" / "binance.json", bundled())
    with pytest.raises(ValidationError) as caught:
        resolve("binance", ["BTC/USDT", "ARB/USDT"], **dirs(tmp_path))
    message = str(caught.value)
    assert message.startswith("ARB/USDT: not a market of binance")
    assert str(tmp_path / "data" / "markets" / "binance.json") in message
    assert str(tmp_path / "configs" / "markets" / "binance.json") in message and "MARKETS=infer" in message
    with pytest.raises(ValidationError, match="no markets snapshot exists"):
        resolve("okx", ["BTC/USDT"], **dirs(tmp_path))


def candles(prices: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"date": pd.date_range("2024-01-01", periods=len(prices), freq="5min", tz="UTC"),
                         "open": prices, "high": prices, "low": prices, "close": prices,
                         "volume": [1.0] * len(prices)})


def test_infer_builds_markets_only_for_pairs_no_snapshot_has_and_lists_them(tmp_path: Path) -> None:
    write(tmp_path / "configs" / "markets" / "binance.json", bundled())
    seen: list[str] = []

    def infer(pair: str) -> dict:
        seen.append(pair)
        return infer_market(pair, candles([0.051234, 0.0513, 0.05129]), fee=0.00075)

    found = resolve("binance", ["BTC/USDT", "ETH/BTC"], mode="infer", infer_market=infer, **dirs(tmp_path))
    assert seen == ["ETH/BTC"]
    assert found.describe()["inferred_pairs"] == ["ETH/BTC"] and found.markets["BTC/USDT"] == bundled()["markets"]["BTC/USDT"]
    market = found.markets["ETH/BTC"]
    assert (market["type"], market["base"], market["quote"], market["taker"]) == ("spot", "ETH", "BTC", 0.00075)
    assert market["precision"]["price"] == pytest.approx(1e-6)  # the finest tick the candles need


def test_infer_with_no_snapshot_at_all_serves_only_inferred_markets(tmp_path: Path) -> None:
    found = resolve("kraken", ["EUR/USD"], mode="infer", **dirs(tmp_path),
                    infer_market=lambda pair: infer_market(pair, candles([1.08123, 1.0812])))
    assert found.snapshot.origin == "inferred" and list(found.markets) == ["EUR/USD"]
    assert found.markets["EUR/USD"]["taker"] == 0.001  # the documented spot default with no config fee


def test_infer_a_linear_swap_and_refuse_what_cannot_be_guessed() -> None:
    swap = infer_market("GOOG/USDT:USDT", candles([171.25, 171.5]))
    assert (swap["type"], swap["settle"], swap["linear"], swap["contractSize"], swap["taker"]) == (
        "swap", "USDT", True, 1.0, 0.0005)
    assert swap["precision"]["price"] == pytest.approx(0.01)
    with pytest.raises(ConfigurationError, match="inverse contract"):
        infer_market("BTC/USD:BTC", candles([60000.5]))
    with pytest.raises(DataError, match="needs the pair's candles"):
        infer_market("ETH/BTC", candles([]))


def test_live_markets_resolve_to_nothing_offline(tmp_path: Path) -> None:
    assert resolve("binance", ["BTC/USDT"], mode="live", **dirs(tmp_path)) is None


class RecordedExchange:
    """A real ccxt exchange object whose markets were recorded: load_markets opens no socket."""

    def __new__(cls, name: str, markets: dict):
        import ccxt

        exchange = getattr(ccxt, name)()
        exchange.set_markets(markets)
        return exchange


def test_take_a_snapshot_from_a_ccxt_exchange_and_load_it(tmp_path: Path) -> None:
    recorded = bundled()["markets"]
    text = take(RecordedExchange("binance", list(recorded.values())), "spot")
    snapshot = parse_snapshot(text.encode(), "taken")
    assert snapshot.exchange == "binance" and snapshot.ccxt_version and snapshot.taken_at
    assert "BTC/USDT" in snapshot.markets and "BTC/USDT:USDT" not in snapshot.markets
    futures = parse_snapshot(take(RecordedExchange("binance", list(recorded.values())), "futures").encode(), "f")
    assert "BTC/USDT:USDT" in futures.markets and "BTC/USDT" not in futures.markets
    # What it writes resolves like any snapshot beside the data.
    write(tmp_path / "data" / "markets" / "binance.json", json.loads(text))
    assert resolve("binance", ["ETH/USDT"], **dirs(tmp_path)).snapshot.exchange == "binance"
