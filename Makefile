# Vision Platform — every target sets itself up on a fresh machine (venv + pinned installs).
# Re-running on a set-up machine reinstalls nothing: the stamp only goes stale when
# pyproject.toml or constraints.txt change.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test test-fast lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(VENV)/bin/vision-platform

lint: setup
	$(VENV)/bin/ruff check app core adapters vision_platform tests bench
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy app core adapters vision_platform

test: setup lint
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -p no:cacheprovider -q -ra --durations=15 tests

# Lint + unit + GUI tests without real training runs (tests marked slow): the quick loop while coding.
test-fast: setup lint
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -p no:cacheprovider -q -ra -m "not slow" --durations=10 tests/unit tests/cli tests/gui

bench: setup
	QT_QPA_PLATFORM=offscreen $(PY) bench/run_all.py

clean:
	rm -rf $(VENV) build dist *.egg-info
