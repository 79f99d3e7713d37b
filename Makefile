# labkit: `make run` runs the course headless, `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run lab hub-proxy classroom classroom-down test lint pytest soak proto bundle bench mutate up down clean

# (Re)install when requirements.txt or pyproject.toml change, or the venv is missing.
$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "labkit needs Python 3.11 or newer: run make PYTHON=python3.11 ..."; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

run: $(STAMP)            ## start the stack, run every notebook with papermill, stop
	$(BIN)/python -m labkit run

lab: $(STAMP)            ## start the stack and JupyterLab on your copy of the notebooks (work/)
	$(BIN)/python -m labkit lab

# JupyterHub's proxy, npm's configurable-http-proxy, pinned by hubproxy/package-lock.json
# (PyPI's Python port breaks email user names). Needs node and npm.
HUB_PROXY := hubproxy/node_modules/.bin/configurable-http-proxy
$(HUB_PROXY): hubproxy/package.json hubproxy/package-lock.json
	npm ci --prefix hubproxy --no-audit --no-fund --ignore-scripts
	@touch $(HUB_PROXY)
hub-proxy: $(HUB_PROXY)

classroom: $(STAMP) $(HUB_PROXY)   ## the shared stack and a JupyterHub for a class (run as root)
	$(BIN)/python -m labkit classroom up
classroom-down: $(STAMP)
	$(BIN)/python -m labkit classroom down

test: lint pytest        ## everything CI runs

lint: $(STAMP)
	$(BIN)/ruff check labkit tests bench
	$(BIN)/ruff format --check labkit tests bench
	$(BIN)/mypy

pytest: $(STAMP)
	@# tests/classroom need the hub's proxy; without npm they skip and say why (not in CI).
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory hub-proxy; fi
	$(BIN)/python -m pytest

soak: $(STAMP)           ## long trials (pytest -m soak): 20 node losses on a 3-node cluster, ...
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory hub-proxy; fi
	$(BIN)/python -m pytest -m soak tests

proto: $(STAMP)          ## regenerate labkit/protocol from proto/
	$(BIN)/python -m labkit.protogen

bundle:                  ## rebuild the browser chat widget's JS (labkit/widgets/static/) from js/; needs node, npm
	cd js && npm ci --no-audit --no-fund --ignore-scripts && node build.mjs

bench: $(STAMP)
	$(BIN)/python bench/bench_up.py

# Mutation testing of the pure-logic modules ([tool.mutmut] in pyproject.toml): CPU
# heavy, so outside CI and `make test`. MUTATE_JOBS bounds the processes (2 cores shared).
MUTATE_JOBS ?= 2
mutate: $(STAMP)
	$(BIN)/mutmut run --max-children $(MUTATE_JOBS)
	$(BIN)/mutmut results

up: $(STAMP)
	$(BIN)/python -m labkit up
down: $(STAMP)
	$(BIN)/python -m labkit down

clean:
	rm -rf build .labkit .pytest_cache .mypy_cache .ruff_cache mutants
