#!/usr/bin/env bash
# `make test` without make (Linux, macOS): set up on first use (scripts/setup.sh), lint, then the whole
# suite headless, with docs/reliability.md rendered from its outcomes (the exit status stays pytest's).
#   scripts/test.sh --fast   is `make test-fast`: lint + unit, CLI and GUI tests without the slow ones.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
vp_setup

# lint
$VENV/bin/ruff check app core adapters vision_platform tests bench
$VENV/bin/lint-imports
$VENV/bin/mypy app core adapters vision_platform

export QT_QPA_PLATFORM=offscreen
if [ "${1:-}" = "--fast" ]; then
    exec $PY -m pytest -p no:cacheprovider -q -ra -m "not slow" --durations=10 tests/unit tests/cli tests/gui
fi
results=$(mktemp)
status=0
VP_RELIABILITY_REPORT=$results $PY -m pytest -p no:cacheprovider -q -ra --durations=15 tests || status=$?
$PY -m tests.reliability.report $results docs/reliability.md || true  # as make: the status stays pytest's
rm -f $results
exit $status
