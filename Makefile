# Two commands for a newcomer: `make run` (the exporter) and `make test` (everything CI runs).
VENV ?= .venv
ARGS ?=
STAMP := $(VENV)/.installed

.PHONY: run test e2e lint metrics check clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test,bench,dashboards]'
	touch $@

run: $(STAMP)
	$(VENV)/bin/panicwatch serve $(ARGS)

metrics: $(STAMP)
	$(VENV)/bin/panicwatch metrics $(ARGS)

check: $(STAMP)
	$(VENV)/bin/panicwatch check $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: lint
	$(VENV)/bin/pytest

# The real-kernel end-to-end tests: a QEMU guest with kdump, NFS and a panic (tests/e2e).
e2e: $(STAMP)
	$(VENV)/bin/pytest -m vm tests/e2e

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
