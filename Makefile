# repricerd — `make run` and `make test` do all set-up on a fresh machine (Python 3.11+ needed).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= config/repricerd.yaml
# Demo credentials of the mock marketplaces (config/repricerd.yaml reads them as ${ENV} secrets,
# exactly as production reads real ones). Never real secrets.
export DEMO_AMAZON_CLIENT_SECRET ?= demo-amazon-client-secret
export DEMO_AMAZON_REFRESH_TOKEN ?= Atzr|demo-refresh-token
export DEMO_AMAZON_WEBHOOK_SECRET ?= demo-amazon-webhook-secret
export DEMO_SHOPIFY_ACCESS_TOKEN ?= shpat_demo_access_token
export DEMO_SHOPIFY_WEBHOOK_SECRET ?= demo-shopify-webhook-secret
export DEMO_WALMART_CLIENT_SECRET ?= demo-walmart-client-secret
export DEMO_WALMART_WEBHOOK_SECRET ?= demo-walmart-webhook-secret
export DEMO_EBAY_CLIENT_SECRET ?= PRD-demo-ebay-client-secret
export DEMO_EBAY_REFRESH_TOKEN ?= v^1.1-demo-ebay-refresh-token
export DEMO_EBAY_VERIFICATION_TOKEN ?= demo_ebay_verification_token_0123456789ab
export DEMO_CONSOLE_PASSWORD ?= demo-console-password

.PHONY: run test lint bench format clean lock

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "repricerd needs Python 3.11+")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install whenever pyproject.toml or a lock changes (new dependency, new pin, new console
# script). The locks are constraints: every install gets exactly the tested versions.
$(VENV)/.installed: pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c requirements.lock -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml requirements-dev.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c requirements-dev.lock -e '.[dev]'
	@touch $@ $(VENV)/.installed

# `make lock` re-resolves the locks after a change to pyproject.toml's dependencies, keeping
# every pin that still fits; `make lock LOCK_FLAGS=--upgrade` moves all pins to the newest
# releases the ranges allow. The dev lock is resolved within the runtime lock, so the two agree.
# pip-tools lives in the venv only (not a project dependency); no index URL or local path is
# written into the locks.
LOCK_FLAGS ?=
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --no-emit-index-url \
	--no-emit-find-links --no-emit-trusted-host --strip-extras $(LOCK_FLAGS)

lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet 'pip-tools>=7.4,<8'
	$(PIP_COMPILE) --output-file requirements.lock pyproject.toml
	$(PIP_COMPILE) --extra dev --constraint requirements.lock --output-file requirements-dev.lock \
		pyproject.toml

run: $(VENV)/.installed
	$(BIN)/repricerd db upgrade -c $(CONFIG)
	@echo "console: http://127.0.0.1:8081/console/  password: $$DEMO_CONSOLE_PASSWORD"
	exec $(BIN)/repricerd run -c $(CONFIG) --mock-marketplaces

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check domain daemon connectors strategies inventory tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench

format: $(VENV)/.installed-dev
	$(BIN)/ruff format domain daemon connectors strategies inventory tests bench
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .hypothesis *.egg-info
