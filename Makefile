# Two entry points for people: `make run` and `make test`. Both build .venv from scratch
# when pyproject.toml changed, so nothing depends on what was installed by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint run demo bench clean system-deps record-histories

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Debian packages the tests use: docker-compose (to validate the compose file), Chromium
# (browser tests), Dovecot (a real IMAP server) and PostgreSQL (the store on a real
# database). Installed when missing and we may (root); the tests say why they skip when
# these are absent.
system-deps:
	@missing=""; \
	command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	test -x /usr/sbin/dovecot || missing="$$missing dovecot-imapd"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	      || echo "system-deps: apt-get failed; tests that need$$missing will skip"; \
	  else echo "system-deps: not root; install$$missing to run every test"; fi; \
	fi

test: lint system-deps
	$(BIN)/python -m pytest

run: $(STAMP)
	$(BIN)/python -m devstack.run

demo: $(STAMP)
	$(BIN)/python -m devstack.demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Benchmarks (not part of `make test`): a table on stdout, figures in bench/results.json.
# docs/benchmarks.md says what each figure means and records the last run.
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# Re-take docs/images/console.png, the README's picture, from the browser test.
screenshots: $(STAMP) system-deps
	TRAMITA_SCREENSHOTS=1 $(BIN)/python -m pytest tests/web/test_browser.py -k agent_takes

# Re-record tests/histories/ (see README, "Changing workflow code").
record-histories: $(STAMP)
	$(BIN)/python -m tests.histories.record
