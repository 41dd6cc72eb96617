# yibao — the two commands a newcomer needs: `make run` and `make test`.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test lint check system-deps bench clean web-assets api-assets screenshots messages fuzz backup-drill ha-demo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Re-install when the dependency list changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

## run: install, upgrade the embedded SQLite database under var/, load the demo city once, serve
## (make run PORT=18101 HOST=0.0.0.0); yibao serve prints every channel's link on that host and port
run: $(VENV)/.installed
	$(BIN)/yibao db upgrade
	$(BIN)/yibao demo
	@echo ""
	$(BIN)/yibao serve --host $(HOST) --port $(PORT)

## system-deps: operating-system packages the tests need (installed when missing and root)
system-deps:
	@bash scripts/system-deps.sh

## lint: ruff, mypy, and the import contracts that keep the layers (pyproject.toml)
lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src
	$(BIN)/lint-imports --no-cache

## test: lint, then the whole suite on SQLite and on a throw-away PostgreSQL cluster
test: $(VENV)/.installed-test system-deps node_modules/.installed lint
	$(BIN)/pytest -p no:cacheprovider

## node_modules: axe-core for the accessibility checks, htmx (vendored into the web static files) and Swagger UI (vendored into the API's)
node_modules/.installed: package.json package-lock.json
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm missing: the browser tests' accessibility checks will skip loudly" >&2; fi

## screenshots: run the browser tests and save the main pages under docs/screenshots/
screenshots: $(VENV)/.installed-test system-deps node_modules/.installed
	YIBAO_SCREENSHOTS=1 YIBAO_TEST_DATABASES=sqlite $(BIN)/pytest -p no:cacheprovider -q tests/browser

## messages: after changing page texts, update the English catalogue (then translate the new entries)
messages: $(VENV)/.installed-test
	$(BIN)/pybabel extract -F src/yibao/channels/web/babel.cfg --no-location -o $(VENV)/web-messages.pot src/yibao/channels/web
	$(BIN)/pybabel update -i $(VENV)/web-messages.pot -d src/yibao/channels/web/locale -l en

## web-assets: refresh the vendored htmx.min.js from node_modules after changing its version
web-assets: node_modules/.installed
	cp node_modules/htmx.org/dist/htmx.min.js src/yibao/channels/web/static/htmx.min.js

## api-assets: refresh the vendored Swagger UI of /docs from node_modules after changing its version
API_STATIC := src/yibao/channels/api/static
api-assets: node_modules/.installed
	cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css \
	   node_modules/swagger-ui-dist/favicon-32x32.png $(API_STATIC)/
	cp node_modules/swagger-ui-dist/LICENSE $(API_STATIC)/swagger-ui.LICENSE
	cp node_modules/swagger-ui-dist/NOTICE $(API_STATIC)/swagger-ui.NOTICE
	cp node_modules/swagger-ui-dist/swagger-ui-bundle.js.LICENSE.txt $(API_STATIC)/

## fuzz: the schemathesis run of the staff API (tests/channels/test_api_fuzz.py) with ten times the examples (about 20,000 requests, SQLite unless YIBAO_TEST_DATABASES says)
FUZZ_EXAMPLES ?= 60
fuzz: $(VENV)/.installed-test
	YIBAO_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) YIBAO_TEST_DATABASES=$${YIBAO_TEST_DATABASES:-sqlite} \
	  $(BIN)/pytest -p no:cacheprovider -q -s --timeout=0 tests/channels/test_api_fuzz.py

## backup-drill: restore the last pgBackRest backup of YIBAO_DATABASE_URL (PostgreSQL) into a new cluster, check it and remove it
## (make backup-drill BACKUP_CONFIG=/etc/pgbackrest/pgbackrest.conf; or BACKUP_REPO=DIR to set pgBackRest up there, superuser URL)
BACKUP_CONFIG ?= /etc/pgbackrest/pgbackrest.conf
backup-drill: $(VENV)/.installed
	@if [ -n "$(BACKUP_REPO)" ]; then $(BIN)/yibao backup drill --repo "$(BACKUP_REPO)"; \
	else $(BIN)/yibao backup drill --config "$(BACKUP_CONFIG)"; fi


## ha-demo: a pg_auto_failover cluster (monitor, primary, synchronous secondary) on loopback ports under a temporary folder, migrated, with the demo city, served; Ctrl-C stops it all
ha-demo: $(VENV)/.installed system-deps
	$(BIN)/yibao ha demo --host $(HOST) --port $(PORT)


## ops-check: ask the server `make run` started whether it is alive (/healthz) and ready (/readyz), and show its yibao_ metrics (with YIBAO_METRICS_TOKEN when set)
.PHONY: ops-check
ops-check:
	curl -fsS http://$(HOST):$(PORT)/healthz && echo
	curl -sS http://$(HOST):$(PORT)/readyz && echo
	curl -fsS $${YIBAO_METRICS_TOKEN:+-H "Authorization: Bearer $$YIBAO_METRICS_TOKEN"} \
	  http://$(HOST):$(PORT)/metrics | grep '^yibao_'

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache node_modules
