# The two commands of the quick start are `make demo` and `make test`; both build .venv themselves.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP_INSTALL := $(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt
RUNTIME_STAMP := $(VENV)/.stamp-runtime
DEV_STAMP := $(VENV)/.stamp-dev
PYTEST_ARGS ?=
# the suite runs on this many processes (pytest-xdist; each test has its own database, ports and temp
# folders); TEST_WORKERS=0 runs it in one process
TEST_WORKERS ?= 2

.PHONY: demo test check lint typecheck contracts fuzz bench lock clean serve

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUNTIME_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(PIP_INSTALL) -e .
	touch $@

$(DEV_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(PIP_INSTALL) -e '.[dev]'
	touch $@ $(RUNTIME_STAMP)

## demo: migrate the embedded SQLite database under ./var/, seed demo data, serve http://127.0.0.1:8000
demo: $(RUNTIME_STAMP)
	$(BIN)/v2g demo

## test: static checks, then the whole suite (set V2G_TEST_DATABASE_URL to also run on PostgreSQL)
test: $(DEV_STAMP) check
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

## check: ruff, mypy and the import-linter layering contracts
check: lint typecheck contracts

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

contracts: $(DEV_STAMP)
	$(BIN)/lint-imports

## fuzz: schemathesis over /openapi.json for every role with many valid and invalid requests per operation
## (the suite runs a few valid ones); figures in test-output/fuzz-http-<role>.json
FUZZ_EXAMPLES ?= 25
fuzz: $(DEV_STAMP)
	V2G_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) V2G_FUZZ_NEGATIVE_ROLES=all V2G_FUZZ_NEGATIVE_EXAMPLES=$(FUZZ_EXAMPLES) \
	  $(BIN)/python -m pytest -p no:cacheprovider -q -s tests/e2e/test_api_fuzz.py $(PYTEST_ARGS)

## bench: every benchmark under bench/, one JSON line of figures each
bench: $(DEV_STAMP)
	@for b in bench/*.py; do echo "# $$b"; $(BIN)/python $$b || exit 1; done

## lock: re-resolve constraints.txt from pyproject.toml in a scratch venv
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install -q '.[dev]'
	{ echo '# Exact versions of every runtime and dev dependency (direct and transitive); the Makefile installs with -c constraints.txt.'; \
	  echo '# Regenerate with: make lock'; \
	  .lock-venv/bin/pip freeze --exclude-editable | grep -v -E '^(v2g-platform|pip|setuptools|wheel)=='; } > constraints.txt
	rm -rf .lock-venv

serve: $(RUNTIME_STAMP)
	$(BIN)/v2g serve

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache var/*.sqlite3 test-output
