"""Log output: JSON lines for machines, readable lines for people, run ids on both."""

from __future__ import annotations

import json
import logging

import pytest

from strategy_runner import logs


@pytest.fixture(autouse=True)
def restore_logging():
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in saved[0]:
        root.addHandler(h)
    root.setLevel(saved[1])


def test_json_lines_carry_run_and_trace_ids_for_stdlib_loggers_too(tmp_path, capsys):
    logs.configure("json", "INFO", tmp_path / "run.log")
    logs.bind_run("run-1", "trace-1", process="test")
    logs.get_logger("strategy_runner.test").info("hello", answer=42)
    logging.getLogger("freqtrade.some.module").warning("from freqtrade %s", "too")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["event"] for line in lines] == ["hello", "from freqtrade too"]
    assert all(line["run_id"] == "run-1" and line["trace_id"] == "trace-1" for line in lines)
    assert lines[0]["answer"] == 42 and lines[1]["level"] == "warning"
    on_disk = [json.loads(line) for line in (tmp_path / "run.log").read_text().splitlines()]
    assert [line["event"] for line in on_disk] == ["hello", "from freqtrade too"]


def test_console_format_is_readable_not_json(capsys):
    logs.configure("console", "INFO")
    logs.bind_run("run-2", "trace-2")
    logs.get_logger().info("readable line")
    err = capsys.readouterr().err
    assert "readable line" in err and "run_id=run-2" in err
    with pytest.raises(json.JSONDecodeError):
        json.loads(err.splitlines()[0])


def test_level_filters(capsys):
    logs.configure("json", "WARNING")
    logs.get_logger().info("dropped")
    logs.get_logger().warning("kept")
    err = capsys.readouterr().err
    assert "dropped" not in err and "kept" in err


def test_credentials_in_uris_are_redacted_on_every_line(tmp_path):
    log_file = tmp_path / "run.log"
    logs.configure("json", "INFO", log_file)
    logs.get_logger("t").warning("tracking unavailable", uri="http://alice:pw-123@mlflow:5000",
                                 nested={"dsn": ["postgresql://bob:pw-456@db/x"]})
    import logging

    logging.getLogger("foreign").error("failed: https://carol:pw-789@host/path")
    text = log_file.read_text()
    assert "pw-123" not in text and "pw-456" not in text and "pw-789" not in text
    assert "http://***@mlflow:5000" in text and "https://***@host/path" in text
    logs.configure()  # back to stderr only
