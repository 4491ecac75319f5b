"""Freqtrade, driven offline through its Python API. Imported only by the worker process."""
