"""Regression backtests: a suite of real runs compared with committed baselines (see command.py)."""
