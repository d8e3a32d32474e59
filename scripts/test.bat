@echo off
rem `make test` without make (Windows): set up on first use (scripts\setup.bat), lint, then the whole
rem suite headless, with docs\reliability.md rendered from its outcomes (the exit status stays pytest's).
rem   scripts\test.bat --fast   is `make test-fast`: lint + unit, CLI and GUI tests without the slow ones.
setlocal
cd /d "%~dp0.."
call scripts\setup.bat || exit /b 1

rem lint
%VENV%\Scripts\ruff.exe check app core adapters vision_platform tests bench || exit /b 1
%VENV%\Scripts\lint-imports.exe || exit /b 1
%VENV%\Scripts\mypy.exe app core adapters vision_platform || exit /b 1

set "QT_QPA_PLATFORM=offscreen"
if not "%~1"=="--fast" goto full
%PY% -m pytest -p no:cacheprovider -q -ra -m "not slow" --durations=10 tests/unit tests/cli tests/gui
exit /b %errorlevel%

:full
set "results=%TEMP%\vp-reliability-%RANDOM%-%RANDOM%.json"
set "VP_RELIABILITY_REPORT=%results%"
%PY% -m pytest -p no:cacheprovider -q -ra --durations=15 tests
set "status=%errorlevel%"
set "VP_RELIABILITY_REPORT="
%PY% -m tests.reliability.report "%results%" docs/reliability.md
del /q "%results%" 2>nul
exit /b %status%
