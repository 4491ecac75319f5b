"""``strategy-runner import-data``: a CSV of OHLCV candles into Freqtrade's data layout
(``csv_candles`` reads and checks it; ``command`` writes it through Freqtrade's data handler).
Nothing is imported here: the CLI registers the command without loading pandas."""
