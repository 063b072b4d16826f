# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_TICKETS ?= 5000
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test install lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Migrate, load the demo district (once) and serve it on SQLite.
demo: export HOTLINE_DISTRICT_NAME ?= 青山区
demo: $(STAMP)
	$(BIN)/hotline db upgrade
	@if [ ! -f var/.demo-loaded ]; then \
		$(BIN)/hotline demo-data --tickets $(DEMO_TICKETS) | tee var/demo-credentials.txt && touch var/.demo-loaded; \
	else cat var/demo-credentials.txt; fi
	$(BIN)/hotline serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/ruff check hotline tests bench
	$(BIN)/pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check hotline tests bench

bench: $(STAMP)
	$(BIN)/python bench/intake.py

clean:
	rm -rf var .pytest_cache
