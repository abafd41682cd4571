# The front door: `make run` runs the whole system locally, `make test` runs every test.
SHELL := bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: help venv run test test-timer lint unit integration kafka-up kafka-down kafka-fetch topics bench chart audit fuzz soak clean

help:
	@echo "make run         start local Kafka (unless KAFKA_BOOTSTRAP_SERVERS is set), topics, sink and gateway"
	@echo "make test        lint, types, unit, contract and integration tests (real Kafka, SQLite, PostgreSQL)"
	@echo "make lint        ruff and mypy --strict"
	@echo "make kafka-up    start the local single-node KRaft broker (KAFKA_LOCAL_PORT, default 9092)"
	@echo "make kafka-down  stop it"
	@echo "make bench       the benchmark harness (bench/)"
	@echo "make chart       helm lint and kubeconform on the Helm chart (needs Go; builds its tools once)"
	@echo "make audit       pip-audit over the installed dependencies (fails on a vulnerability with a fix)"
	@echo "make fuzz        schemathesis on every route, FUZZ_EXAMPLES (default 3000) examples a route"
	@echo "make soak        mixed traffic with a broker restart, SOAK_SECONDS (default 60); counts lost and duplicated"

# The marker is rebuilt when the dependencies change; a fresh machine needs only python3.
$(BIN)/.installed: pyproject.toml client/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]' -e './client[cli]'
	touch $@

venv: $(BIN)/.installed

kafka-fetch:
	scripts/kafka.sh fetch >/dev/null

kafka-up:
	scripts/kafka.sh up

kafka-down:
	scripts/kafka.sh down

topics: venv
	$(BIN)/ingest-topics apply

run: venv kafka-fetch
	scripts/run.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest tests/unit tests/contract

integration: venv kafka-fetch
	$(BIN)/pytest tests/integration

test: venv kafka-fetch lint
	$(BIN)/pytest

# The publisher's integration tests once more with delivery reports polled on a timer, the fallback
# KAFKA_REPORT_WAKEUP=pipe takes when librdkafka's handle cannot be had (CI runs both).
test-timer: venv kafka-fetch
	KAFKA_REPORT_WAKEUP=timer $(BIN)/pytest tests/integration/test_confluent_publisher.py \
		tests/integration/test_ingest_kafka.py tests/integration/test_gateway_process.py

chart: venv
	helm/ci.sh

audit: venv
	$(BIN)/python scripts/audit.py

fuzz: venv kafka-fetch
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-3000} $(BIN)/pytest -s tests/integration/test_fuzz.py

soak: venv kafka-fetch
	$(BIN)/python -m bench.soak --seconds $${SOAK_SECONDS:-60}

bench: venv kafka-fetch
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .run .mypy_cache .ruff_cache .pytest_cache *.egg-info
