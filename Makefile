# Fleet Assurance — `make run` and `make test` set everything up themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench install clean schema tools prometheusrule

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -m models.risk.precompile
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/fleet run

test: $(STAMP) tools
	$(BIN)/python -m pytest -q

# Debian tools of the deploy tests, installed when missing and we are root (CI is): promtool and
# prometheus (package prometheus), a compose client to validate deploy/docker-compose.yml (docker-compose).
tools:
	@missing=""; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	{ command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1; } || missing="$$missing docker-compose"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else echo "missing Debian packages:$$missing (not root: those deploy tests are skipped)"; fi; \
	fi

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/python -m bench.risk --artifact $$(ls -d models/artifacts/risk/risk-* | tail -1)
	$(BIN)/python -m bench.charging
	nice -n 10 $(BIN)/python -m bench.inference
	$(BIN)/python -m bench

# deploy/prometheus/rules.yml as a Prometheus Operator PrometheusRule: make -s prometheusrule | kubectl apply -n NS -f -
prometheusrule:
	@printf 'apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: fleet-assurance\n  labels: {release: kube-prometheus-stack}\nspec:\n'
	@sed -e '/^ *#/d' -e 's/^/  /' deploy/prometheus/rules.yml

clean:
	rm -rf var .pytest_cache
