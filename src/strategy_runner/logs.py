"""structlog, configured once per process.

JSON lines when stdout is not a terminal (containers, CI), readable console output when
it is; the run's log file under runs/<RUN_ID>/ is always JSON lines. Freqtrade's
standard-library log records pass through the same pipeline, so every line carries
run_id and trace_id (bound in contextvars).
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import Any

# structlog imports rich, when installed, for pretty tracebacks: ~70 ms of every run's start
# before RUNNING (-X importtime). Tracebacks are rendered without it (below), so it is kept
# out of the import; Freqtrade's own import of rich, in the worker, is unaffected.
_rich = sys.modules.setdefault("rich", None)  # type: ignore[arg-type]  # None: an ImportError
try:
    import structlog
finally:
    if _rich is None:
        del sys.modules["rich"]

# user:password@ (or user@) inside any URI: http://u:p@host, postgresql://u:p@db, s3 presigned-less.
_URI_CREDENTIALS = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s:@'\"<>]+(?::[^/\s@'\"<>]*)?@")


def redact(value: Any) -> Any:
    """``value`` with the credentials of every URI in it replaced by ``***`` (strings, and
    strings inside dicts and lists). Applied to every log line, status item and callback."""
    if isinstance(value, str):
        return _URI_CREDENTIALS.sub(r"\g<scheme>***@", value) if "@" in value else value
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v) for v in value)
    return value


def _redact_event(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return redact(event_dict)

_SHARED = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.stdlib.ExtraAdder(),
]


class _RunLogHandler(logging.FileHandler):
    """run.log; when it cannot be written (a full disk) the run goes on logging to stderr,
    with one line saying so instead of a traceback per record."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        import sys as _sys

        if getattr(self, "_failed", False):
            return
        self._failed = True
        error = _sys.exc_info()[1]
        _sys.stderr.write(f'{{"event": "run.log cannot be written; logging to stderr only", '
                          f'"level": "error", "file": "{self.baseFilename}", "error": "{error}"}}\n')

    def emit(self, record: logging.LogRecord) -> None:
        if not getattr(self, "_failed", False):
            super().emit(record)


#: structlog's dict_tracebacks, the same whether or not rich was imported first.
_DICT_TRACEBACKS = structlog.processors.ExceptionRenderer(structlog.tracebacks.ExceptionDictTransformer(use_rich=False))


def _formatter(json_lines: bool) -> logging.Formatter:
    renderer = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty(),
                                           exception_formatter=structlog.dev.plain_traceback)
    )
    processors = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if json_lines:
        processors.append(_DICT_TRACEBACKS)
    processors.append(_redact_event)  # last before rendering: tracebacks included
    return structlog.stdlib.ProcessorFormatter(foreign_pre_chain=_SHARED, processors=[*processors, renderer])


def configure(log_format: str = "auto", level: str = "INFO", log_file: Path | None = None) -> None:
    """Route structlog and the standard library through one set of handlers.

    Safe to call again (Freqtrade's own setup replaces root handlers; we put ours back).
    Logs go to stderr so stdout stays free for command output (``--json``).
    """
    json_lines = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    handlers[0].setFormatter(_formatter(json_lines))
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = _RunLogHandler(log_file, encoding="utf-8")
        file_handler.setFormatter(_formatter(True))
        handlers.append(file_handler)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        if old not in handlers:
            old.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    # Chatty third parties: keep their warnings, drop their debug/info.
    # numexpr announces its thread count at INFO on import (pandas imports it): noise on stderr.
    for name in ("botocore", "boto3", "urllib3", "s3transfer", "alembic", "mlflow", "ccxt", "asyncio", "numexpr"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    structlog.configure(
        processors=[*_SHARED[:1], structlog.stdlib.filter_by_level, *_SHARED[1:],
                    structlog.processors.StackInfoRenderer(),
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def bind_run(run_id: str, trace_id: str, **extra: str) -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(run_id=run_id, trace_id=trace_id, **extra)


def get_logger(name: str = "strategy_runner") -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
