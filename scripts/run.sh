#!/usr/bin/env bash
# `make run` without make (Linux, macOS): set up on first use (scripts/setup.sh), check Qt's platform
# plugin, start the app. Arguments go to the app (e.g. image files to open).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
vp_setup
$PY scripts/preflight.py --qt-platform
exec $VENV/bin/vision-platform "$@"
