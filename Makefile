# Two commands do all the setup on a fresh machine:
#   make backtest   -> a real backtest on the bundled data (no AWS, no Docker, no network)
#   make test       -> the test suite (what CI runs)
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: backtest test setup lock browser clean bench bench-quick regression bench-cache

# Both environments install exact versions from the locks (requirements/lock.py, `make lock`),
# --no-deps so nothing resolves at install time: the tests run what the image ships.
# The runtime (make backtest) needs only the image's lock; the tests need the dev lock.
$(VENV)/.runtime: pyproject.toml requirements/image.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-deps -r requirements/image.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements/dev.txt
	$(BIN)/pip install --quiet --no-deps -r requirements/dev.txt
	$(BIN)/pip check
	touch $@

setup: $(VENV)/.dev

backtest: $(VENV)/.runtime
	$(BIN)/strategy-runner backtest

# Refresh the locks: keeps today's pins; UPGRADE=1 resolves everything afresh.
lock:
	$(PYTHON) requirements/lock.py $(if $(UPGRADE),--upgrade)

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
