# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: run test lint test-sqlite test-mysql bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.site: $(BIN)/activate requirements.txt
	./scripts/install-system-packages
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.site requirements-dev.txt tests/oidc_provider/package-lock.json
	./scripts/install-system-packages --tests
	$(BIN)/pip install -q -r requirements-dev.txt
	npm ci --silent --prefix tests/oidc_provider
	touch $@

# Web server and Celery worker together, embedded mode; Ctrl-C stops both.
run: $(VENV)/.site
	DEBUG=true $(BIN)/python manage.py migrate --no-input
	@echo "photosite is starting at http://127.0.0.1:$(PORT)/"
	DEBUG=true PORT=$(PORT) PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile

lint: $(VENV)/.dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	DEBUG=true $(BIN)/mypy .
	DEBUG=true $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/cfn-lint lambda_src/template.yaml

test-sqlite: $(VENV)/.dev
	$(BIN)/pytest

# MariaDB or MySQL at MYSQL_URL; Django creates and drops test_photosite.
MYSQL_URL ?= mysql://root@127.0.0.1:3306/photosite
test-mysql: $(VENV)/.dev
	DATABASE_URL=$(MYSQL_URL) $(BIN)/pytest -m "not browser"

test: lint test-sqlite test-mysql

bench: $(VENV)/.dev
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var
