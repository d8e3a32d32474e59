"""`vision-platform` dispatcher.

- no sub-command: the desktop app (PySide6);
- ``worker`` / ``models`` / ``sysinfo`` / ``infer-worker``: heavy commands that import ML frameworks,
  run by the app and the runner as subprocesses (never typed by users);
- anything else: the headless CLI in ``core.cli``.
"""

from __future__ import annotations

import sys

WORKER_COMMANDS = {"worker", "models", "sysinfo", "infer-worker"}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        from app.main import main as gui_main

        return gui_main([])
    if args[0] in WORKER_COMMANDS:
        from adapters.worker import main as worker_main

        return worker_main(args)
    if args[0] == "gui":
        from app.main import main as gui_main

        return gui_main(args[1:])
    from core.cli import main as cli_main

    return cli_main(args)
