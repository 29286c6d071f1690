# The README's two commands: `make serve` and `make test`. Each does its own set-up on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
EXAMPLE := psiturk-example
POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: serve test install install-dev browser lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e '.[legacy]'

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,legacy]'

# Debian's Chromium for the browser tests (tests/browser.py launches /usr/bin/chromium); Playwright never
# downloads a browser of its own.
browser:
	@test -x /usr/bin/chromium || { \
		if [ "$$(id -u)" != 0 ]; then echo "Chromium is missing: run 'make browser' as root (apt-get)"; exit 1; fi; \
		echo "Installing Chromium from Debian..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

serve: install
	@test -d $(EXAMPLE) || $(BIN)/psiturk-async setup-example $(EXAMPLE)
	@$(BIN)/python -c "import secrets; i = lambda: 'debug' + secrets.token_hex(3).upper(); \
		print(f'Debug link: http://localhost:22362/ad?assignmentId={i()}&hitId={i()}&workerId={i()}&mode=debug')"
	cd $(EXAMPLE) && ../$(BIN)/psiturk-async serve

test: install-dev browser
	@if [ -z "$$PSITURK_TEST_POSTGRES_URL" ] && pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then \
		echo "PostgreSQL found at 127.0.0.1:5432: the PostgreSQL half of the suite runs too."; fi
	PSITURK_TEST_POSTGRES_URL=$${PSITURK_TEST_POSTGRES_URL:-$$(pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && echo $(POSTGRES_URL))} \
		AWS_EC2_METADATA_DISABLED=true PSITURK_TEST_STRICT=1 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(BIN)/python -m pytest
	node --test client/

lint: install-dev
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) $(EXAMPLE) .pytest_cache
