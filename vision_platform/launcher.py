"""`vision-platform` dispatcher.

- no sub-command: the desktop app (PySide6), after checking that Qt's platform plugin can load
  (``core.platform_plugin``: a missing X11 library is named with its install command instead of Qt's
  abort);
- ``worker`` / ``models`` / ``sysinfo`` / ``infer-worker`` / ``augment-preview``: heavy commands that import ML frameworks,
  run by the app and the runner as subprocesses (never typed by users);
- ``device-probe``: the selftest's GPU check (a subprocess, so the CLI never imports torch);
- anything else: the headless CLI in ``core.cli``.

Frozen (PyInstaller), this is also the entry of every child process: ``core.launch.subcommand`` runs
the app's own executable with a sub-command, and ``multiprocessing.freeze_support`` lets a library
that uses ``multiprocessing`` (DataLoader workers) start its children from the same executable.
"""

from __future__ import annotations

import multiprocessing
import sys
from pathlib import Path

WORKER_COMMANDS = {"worker", "models", "sysinfo", "infer-worker", "export-worker", "augment-preview"}
GUI_COMMAND = "gui"
DEVICE_PROBE_COMMAND = "device-probe"


def _gui(argv: list[str]) -> int:
    from core.platform_plugin import require_platform_plugin

    require_platform_plugin()
    from app.main import main as gui_main

    return gui_main(argv)


def _all_existing_files(args: list[str]) -> bool:
    return all(Path(arg).is_file() for arg in args)


def _run_module(module: str, argv: list[str]) -> int:
    """Frozen, ``sys.executable -m MODULE ARGS`` (``mlflow ui`` and the server processes it starts) runs
    that bundled module as ``python -m`` would; from source the interpreter handles ``-m`` itself."""
    import runpy

    sys.argv = [module, *argv]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def main(argv: list[str] | None = None) -> int:
    multiprocessing.freeze_support()
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0].startswith("-psn_"):  # macOS Finder adds a -psn_ argument to a double-clicked .app
        return _gui([])
    if _all_existing_files(args):  # files dropped on the launcher icon (the .desktop entry's %F)
        return _gui(args)
    if args[0] == "-m" and len(args) > 1 and getattr(sys, "frozen", False):
        return _run_module(args[1], args[2:])
    if args[0] in WORKER_COMMANDS:
        from adapters.worker import main as worker_main

        return worker_main(args)
    if args[0] == GUI_COMMAND:
        return _gui(args[1:])
    if args[0] == DEVICE_PROBE_COMMAND:
        from adapters.device_probe import main as probe_main

        return probe_main()
    from core.cli import main as cli_main

    return cli_main(args)
