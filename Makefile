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

.PHONY: run test lint bench format clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "repricerd needs Python 3.11+")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install whenever pyproject.toml changes (new dependency, new console script).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/repricerd db upgrade -c $(CONFIG)
	exec $(BIN)/repricerd run -c $(CONFIG) --mock-marketplaces

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check domain daemon connectors strategies tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench

format: $(VENV)/.installed-dev
	$(BIN)/ruff format domain daemon connectors strategies tests bench
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .hypothesis *.egg-info
