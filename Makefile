# Two commands do all the setup on a fresh machine:
#   make backtest   -> a real backtest on the bundled data (no AWS, no Docker, no network)
#   make test       -> the test suite (what CI runs)
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: backtest test setup browser clean bench bench-quick regression bench-cache

$(BIN)/strategy-runner: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/strategy-runner

backtest: setup
	$(BIN)/strategy-runner backtest

test: setup browser
	$(BIN)/pytest

# Debian's Chromium for the HTML report's headless-browser test; installed only when missing.
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Performance harness (bench/run.py): runner vs plain freqtrade, lifecycle timings. Writes bench/out/.
bench: setup
	$(BIN)/python bench/run.py $(BENCH_ARGS)

bench-quick: setup
	$(BIN)/python bench/run.py --quick $(BENCH_ARGS)

# Regression backtests (regression/suite.toml) against regression/baselines/; exit 1 when a metric moved.
regression: setup
	$(BIN)/strategy-runner regression $(REGRESSION_ARGS)

# Cold vs cached run of the regression suite (bench/cache.py). Writes bench/out/cache.json.
bench-cache: setup
	$(BIN)/python bench/cache.py

clean:
	rm -rf $(VENV) runs mlflow.db mlruns
