# Two entry points: `make run` (the default audit) and `make test`. Both set up .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed
TEST_STAMP := $(VENV)/.test-requirements-installed

.PHONY: run test browser dry-run clean

run: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --cores 8

test: $(STAMP) $(TEST_STAMP) browser
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q tests

# The report's browser test needs Chromium (Debian's package); where it cannot be installed the
# test is skipped with a message saying so, and everything else runs.
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "make: chromium could not be installed: tests/test_pipeline_digits.py's browser test will be skipped"

dry-run: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake -n

# Installing twice is a no-op: the stamp is newer than requirements.txt.
$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

# the reference implementations the tests compare against (never needed to run an audit)
$(TEST_STAMP): requirements-test.txt $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
	touch $(TEST_STAMP)

clean:
	rm -rf results .snakemake
