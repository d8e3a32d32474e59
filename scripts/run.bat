@echo off
rem `make run` without make (Windows): set up on first use (scripts\setup.bat), check Qt's platform
rem plugin, start the app. Arguments go to the app (e.g. image files to open).
setlocal
cd /d "%~dp0.."
call scripts\setup.bat || exit /b 1
%PY% scripts\preflight.py --qt-platform || exit /b 1
%VENV%\Scripts\vision-platform.exe %*
exit /b %errorlevel%
