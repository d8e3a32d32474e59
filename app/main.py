"""Desktop entry point: ``vision-platform`` with no sub-command lands here.

Start-up order is chosen for a fast first paint: Qt and the window first; nothing here imports an ML
framework (GPU detection and model lists come from helper processes once the window is up).
"""

from __future__ import annotations

import os
import sys

from PySide6.QtCore import QCoreApplication, QSettings
from PySide6.QtWidgets import QApplication, QStyleFactory

from app.look import APP_NAME, ORG_NAME, icon

SETTINGS_DATA_DIR = "data_dir"


def make_application(argv: list[str]) -> QApplication:
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    QCoreApplication.setOrganizationName(ORG_NAME)
    QCoreApplication.setApplicationName(APP_NAME)
    app = QApplication([sys.argv[0] if sys.argv else "vision-platform", *argv])
    app.setApplicationDisplayName(APP_NAME)
    app.setDesktopFileName("vision-platform")
    app.setWindowIcon(icon("app"))
    # Native style where Qt has one (Windows, macOS, KDE/GTK themes); Fusion otherwise.
    if app.style().name().lower() in ("windows", "") or sys.platform.startswith("linux"):
        if app.style().name().lower() not in ("breeze", "gtk", "kvantum") and "Fusion" in QStyleFactory.keys():
            app.setStyle("Fusion")
    return app


def main(argv: list[str]) -> int:
    app = make_application(argv)
    # A data folder chosen in Settings applies from the next start (VP_HOME still wins).
    chosen = QSettings().value(SETTINGS_DATA_DIR, "")
    if chosen and not os.environ.get("VP_HOME"):
        os.environ["VP_HOME"] = str(chosen)

    from app.main_window import MainWindow
    from core.db.engine import close_all_stores, open_store
    from core.jobs.queue import JobQueue
    from core.jobs.store import reconcile_orphaned_jobs
    from core.settings import Settings

    store = open_store()
    reconcile_orphaned_jobs(store)
    settings = Settings.load(store)
    window = MainWindow(store, settings=settings)
    queue = JobQueue(store, max_concurrent=settings.max_concurrent_jobs,
                     on_event=window.job_events.emit_event)
    window.queue = queue
    window.show()
    queue.start()
    try:
        return app.exec()
    finally:
        queue.stop()
        close_all_stores()
