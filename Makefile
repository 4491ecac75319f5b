# Two commands do all the setup on a fresh machine:
#   make backtest   -> a real backtest on the bundled data (no AWS, no Docker, no network)
#   make test       -> the test suite (what CI runs)
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: backtest test setup clean

$(BIN)/strategy-runner: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/strategy-runner

backtest: setup
	$(BIN)/strategy-runner backtest

test: setup
	$(BIN)/pytest

clean:
	rm -rf $(VENV) runs mlflow.db
