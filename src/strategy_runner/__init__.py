"""strategy-runner: a Freqtrade backtest runner that owns its run's lifecycle."""

__version__ = "0.1.0"
