#!/usr/bin/env bash
# Build the onedir app (or reuse dist/vision-platform when it exists; REBUILD=1 forces a build), then run
# the frozen `selftest` headless in a throw-away data dir: versions, devices, storage, Qt, and a real
# 1-epoch training through a frozen worker plus an inference on its checkpoint.
# Prints the build time, the bundle size and its ten largest parts. Exit status: the selftest's.
set -euo pipefail
cd "$(dirname "$0")/.."
DIST=${VP_DIST:-dist}
WORK=${VP_BUILD:-build/pyinstaller}
APP_DIR="$DIST/vision-platform"
APP="$APP_DIR/vision-platform"

if [ ! -x "$APP" ] || [ "${REBUILD:-0}" = 1 ]; then
    started=$(date +%s)
    .venv/bin/pyinstaller --noconfirm --log-level WARN --distpath "$DIST" --workpath "$WORK" build.spec
    mkdir -p "$WORK" && echo $(( $(date +%s) - started )) > "$WORK/build_seconds.txt"
    echo "build time: $(cat "$WORK/build_seconds.txt") s"
fi
echo "bundle size: $(du -sh "$APP_DIR" | cut -f1) in $APP_DIR ($(find "$APP_DIR" -type f | wc -l) files)"
echo "ten largest parts:"
du -s --block-size=1M "$APP_DIR"/_internal/* "$APP_DIR"/_internal/*/lib 2>/dev/null | sort -rn | head -10 \
    | awk '{printf "  %6d MB  %s\n", $1, $2}'

home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
echo "frozen selftest (VP_HOME=$home):"
VP_HOME="$home" QT_QPA_PLATFORM=offscreen "$APP" selftest "$@"
