@echo off
rem `make setup` without make, called by scripts\run.bat and scripts\test.bat (Windows): the same steps
rem with the same flags as the Makefile's set-up rule (tests\packaging\test_setup_scripts.py compares
rem them). A venv in .venv, the hash-locked wheels of the lock (--require-hashes, wheels only), then
rem the project itself without dependencies and without build isolation. One step more than make:
rem scripts\lock_check.py chooses the lock for this computer (requirements.lock when it was made for
rem this platform, else requirements-win32-amd64-py311.lock or the like beside it, made on first use)
rem and writes its path to .venv\lock-in-use. Nothing is reinstalled while .venv\.installed is newer
rem than pyproject.toml, constraints.txt, the configured lock and the chosen one.
rem PYTHON picks the interpreter (default: the py launcher's newest Python 3), LOCK the lock file.
if not defined PYTHON set "PYTHON=py -3"
set "VENV=.venv"
set "PY=.venv\Scripts\python.exe"
set "STAMP=.venv\.installed"
if not defined LOCK set "LOCK=requirements.lock"
set "LOCK_IN_USE=.venv\lock-in-use"
set "PIP=%PY% -m pip --disable-pip-version-check"

set "CHOSEN="
if exist "%LOCK_IN_USE%" set /p CHOSEN=<"%LOCK_IN_USE%"
if defined CHOSEN if exist "%STAMP%" if exist "%PY%" "%PY%" -c "import os, sys; s = os.path.getmtime(sys.argv[1]); sys.exit(any(not os.path.isfile(f) or os.path.getmtime(f) > s for f in sys.argv[2:]))" "%STAMP%" pyproject.toml constraints.txt "%LOCK%" "%CHOSEN%" && exit /b 0
%PYTHON% --version >nul 2>&1 || (echo error: %PYTHON% not found. Install Python ^>= 3.11 from python.org ^(with the py launcher^), or set PYTHON to one & exit /b 1)
if not exist "%PY%" %PYTHON% scripts\preflight.py || exit /b 1
if not exist "%PY%" %PYTHON% -m venv %VENV% || exit /b 1
%PY% scripts\lock_check.py %LOCK% || exit /b 1
set /p LOCK=<"%LOCK_IN_USE%"
%PIP% install -q --require-hashes --only-binary :all: -r %LOCK% || exit /b 1
%PIP% install -q --no-deps --no-build-isolation -e . || exit /b 1
type nul > "%STAMP%"
exit /b 0
