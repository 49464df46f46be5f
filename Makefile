# Fleet Assurance — `make run` and `make test` set everything up themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench install clean schema

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -m models.risk.precompile
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/fleet run

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/python -m bench.risk --artifact $$(ls -d models/artifacts/risk/risk-* | tail -1)
	$(BIN)/python -m bench.charging
	nice -n 10 $(BIN)/python -m bench.inference
	$(BIN)/python -m bench

schema: $(STAMP)
	$(BIN)/python -m twins.schema

clean:
	rm -rf var .pytest_cache
