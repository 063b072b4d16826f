# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_TICKETS ?= 5000
HOST ?= 127.0.0.1
PORT ?= 8000
# Where `make demo` keeps the demo's credentials and its loaded mark.
VAR ?= var

.PHONY: demo test install lint audit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Migrate, load the demo district (once) and serve it on SQLite. The credentials file is
# readable by its owner only, like the database.
demo: export HOTLINE_DISTRICT_NAME ?= 青山区
demo: $(STAMP)
	$(BIN)/hotline db upgrade
	@umask 077; mkdir -p $(VAR); \
	if [ ! -f $(VAR)/.demo-loaded ]; then \
		$(BIN)/hotline demo-data --tickets $(DEMO_TICKETS) | tee $(VAR)/demo-credentials.txt && touch $(VAR)/.demo-loaded; \
	else chmod 600 $(VAR)/demo-credentials.txt; cat $(VAR)/demo-credentials.txt; fi
	$(BIN)/hotline serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/ruff check hotline tests bench
	$(BIN)/pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check hotline tests bench

# Known vulnerabilities in the installed dependencies (pip-audit): reported, never a failure,
# and a warning when the vulnerability service cannot be reached.
audit: $(STAMP)
	$(BIN)/python .ci/audit.py

bench: $(STAMP)
	$(BIN)/python bench/intake.py

clean:
	rm -rf $(VAR) .pytest_cache
