# The commands the README names. `make test` and `make run` set everything up themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SCORER := $(BIN)/scorer
KAFKA_JARS := infra/kafka/lib/.resolved
# rustup's default place for cargo, for shells that have not sourced ~/.cargo/env
export PATH := $(PATH):$(HOME)/.cargo/bin

.PHONY: setup run test test-unit browser bench lint format clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup: $(VENV)/.installed $(KAFKA_JARS)  ## virtual environment, Python packages, Kafka jars

$(VENV)/.installed: pyproject.toml native/Cargo.toml native/Cargo.lock \
		$(wildcard native/src/*.rs)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	@command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,lightgbm,xgboost,mlflow]'
	@touch $@

$(KAFKA_JARS): infra/kafka/pom.xml
	@command -v java >/dev/null || { echo "java not found: install Java 17+"; exit 1; }
	@command -v mvn >/dev/null || { echo "mvn not found: install Maven 3.8+"; exit 1; }
	rm -rf infra/kafka/lib
	mvn --batch-mode --no-transfer-progress --quiet -f infra/kafka/pom.xml package
	@touch $@

run: setup  ## the product: local broker, topics, a demo model, live scoring with drift
	@trap 'true' INT; started=; \
	if [ -z "$$KAFKA_BOOTSTRAP_SERVERS" ] && ! $(SCORER) broker status >/dev/null 2>&1; then \
		$(SCORER) broker up || exit 1; started=1; fi; \
	$(SCORER) topics apply && $(SCORER) demo $(DEMO_ARGS); status=$$?; \
	if [ -n "$$started" ]; then $(SCORER) broker down; fi; exit $$status

browser:  ## headless Chromium for the report's rendering tests (Debian's package)
	@[ -x /usr/bin/chromium ] || { apt-get update -q && apt-get install -y --no-install-recommends chromium; }

test: setup browser  ## unit tests, then integration tests against a real broker started for the run
	$(BIN)/pytest

test-unit: setup  ## only the tests that need no broker
	$(BIN)/pytest -m "not kafka"

bench: setup  ## benchmarks; the last line is JSON
	$(BIN)/python tests/bench/bench_core.py --seconds 1
	$(BIN)/python tests/bench/bench_monitoring.py
	$(BIN)/python tests/bench/bench_join.py
	$(BIN)/python tests/bench/bench_pipeline.py

lint: setup  ## format check, lint, types, layering contracts, declared dependencies
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/deptry .

format: setup  ## apply the formatter and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:  ## stop the local broker, remove var/, jars and the virtual environment
	-@[ -x $(SCORER) ] && $(SCORER) broker down
	rm -rf var infra/kafka/lib infra/kafka/target $(VENV) .pytest_cache .mypy_cache .ruff_cache
