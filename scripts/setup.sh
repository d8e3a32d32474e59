# `make setup` without make, sourced by scripts/run.sh and scripts/test.sh (Linux, macOS): the same
# steps with the same flags as the Makefile's set-up rule (tests/packaging/test_setup_scripts.py runs
# these scripts against the Makefile's recipes). A venv in .venv, the hash-locked wheels of the lock
# (--require-hashes, wheels only), then the project itself without dependencies and without build
# isolation. One step more than make: scripts/lock_check.py chooses the lock for this computer
# (requirements.lock when it was made for this platform, else requirements-<platform>.lock beside it,
# made on first use) and writes its path to .venv/lock-in-use. Nothing is reinstalled while
# .venv/.installed is newer than pyproject.toml, constraints.txt, the configured lock and the chosen one.
# PYTHON picks the interpreter (default python3), LOCK the configured lock file.
PYTHON="${PYTHON:-python3}"
VENV=.venv
PY=$VENV/bin/python
STAMP=$VENV/.installed
LOCK="${LOCK:-requirements.lock}"
LOCK_IN_USE=$VENV/lock-in-use
PIP="$PY -m pip --disable-pip-version-check"

vp_installed() {
    local chosen input
    [ -f "$STAMP" ] && [ -f "$LOCK_IN_USE" ] || return 1
    chosen=$(cat "$LOCK_IN_USE")
    [ -f "$chosen" ] || return 1
    for input in pyproject.toml constraints.txt "$LOCK" "$chosen"; do
        [ "$input" -nt "$STAMP" ] && return 1
    done
    return 0
}

vp_setup() {
    vp_installed && return 0
    command -v "$PYTHON" >/dev/null || { echo "error: $PYTHON not found. Install Python >= 3.11 (Debian/Ubuntu: sudo apt install python3 python3-venv; Fedora: sudo dnf install python3; macOS: python.org or brew install python@3.11)"; exit 1; }
    test -x $PY || $PYTHON scripts/preflight.py
    test -x $PY || $PYTHON -m venv $VENV
    $PY scripts/lock_check.py $LOCK
    LOCK=$(cat "$LOCK_IN_USE")
    $PIP install -q --require-hashes --only-binary :all: -r $LOCK
    $PIP install -q --no-deps --no-build-isolation -e .
    touch $STAMP
}
