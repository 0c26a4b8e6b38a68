# Two commands for a newcomer: `make run` (the exporter) and `make test` (everything CI runs).
VENV ?= .venv
ARGS ?=
STAMP := $(VENV)/.installed

.PHONY: run test lint metrics check clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
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

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
