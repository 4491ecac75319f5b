"""Freqtrade's warnings that change a result, counted for the summary (``warnings``).

Freqtrade says these only in its log (or not at all in a backtest): a series with no data,
an entry refused because the stake is below the pair's minimum, an informative dataframe
that is empty, a strategy callback raising (Freqtrade logs and carries on, every call).

A callback raising on every candle is logged by Freqtrade each time, with a traceback;
our JSON log renders each frame's locals, which made such runs several times slower than
plain Freqtrade. So each distinct callback error is logged in full once, a few more times
without the traceback, then only counted (the count is in the summary).
"""

from __future__ import annotations

import logging
import re
from typing import Any

#: Records of one callback error logged after the first, without traceback, before only counting.
LOGGED_REPEATS = 9
WRAPPER_LOGGER = "freqtrade.strategy.strategy_wrapper"

_KINDS = (
    ("no_data", re.compile(r"^No (history for|data found)")),
    ("informative_empty", re.compile(r"Informative dataframe .* is empty")),
)
_CALLING = re.compile(r"calling (?:<bound method )?(?P<name>[\w.]+)")


class ResultWarnings(logging.Handler):
    """Counts warnings by kind: a handler on the ``freqtrade`` logger (every module's records
    propagate to it) and ``callback_error``, a filter on the strategy wrapper's logger (which
    also thins them out before any handler formats them)."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.counts: dict[str, int] = {}
        self.first: dict[str, str] = {}
        self.import_errors: list[str] = []  # "Could not import <file> due to '<error>'"
        self.messages: list[str] = []  # the first warnings, to name why a pair was dropped
        self._repeats: dict[str, int] = {}

    def add(self, kind: str, message: str, count: int = 1) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + count
        self.first.setdefault(kind, message)

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == WRAPPER_LOGGER:
            return  # counted by callback_error()
        message = record.getMessage()
        if len(self.messages) < 200:
            self.messages.append(message)
        if message.startswith("Could not import "):
            self.import_errors.append(message)
        for kind, pattern in _KINDS:
            if pattern.search(message):
                self.add(kind, message)

    def callback_error(self, record: logging.LogRecord) -> bool:
        """A strategy wrapper record: count it; log it fully once, then thinner, then not."""
        if record.levelno < logging.WARNING:
            return True
        message = record.getMessage()
        match = _CALLING.search(message)
        callback = match["name"].rsplit(".", 1)[-1] if match else "callback"
        self.add(f"strategy_callback_error:{callback}", message)
        if "Informative dataframe" in message and "is empty" in message:
            self.add("informative_empty", message)
        signature = f"{callback}:{type(record.exc_info[1]).__name__ if record.exc_info else message[:200]}"
        seen = self._repeats.get(signature, 0)
        self._repeats[signature] = seen + 1
        if seen == 0:
            return True
        if seen <= LOGGED_REPEATS:
            record.exc_info = record.exc_text = None
            record.stack_info = None
            return True
        return False

    def install(self) -> None:
        logging.getLogger("freqtrade").addHandler(self)
        logging.getLogger(WRAPPER_LOGGER).addFilter(self.callback_error)

    def uninstall(self) -> None:
        logging.getLogger("freqtrade").removeHandler(self)
        logging.getLogger(WRAPPER_LOGGER).removeFilter(self.callback_error)

    def summary(self) -> dict[str, Any]:
        """{kind: {"count": n, "first": message}}, the summary's ``warnings``."""
        return {k: {"count": n, "first": self.first[k][:500]} for k, n in sorted(self.counts.items())}
