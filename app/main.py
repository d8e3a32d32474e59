"""Desktop entry point: ``vision-platform`` with no sub-command lands here.

Start-up order is chosen for a fast first paint: Qt and the window first; nothing here imports an ML
framework (GPU detection and model lists come from helper processes once the window is up).
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING

from PySide6.QtCore import QCoreApplication, QSettings
from PySide6.QtWidgets import QApplication, QStyleFactory

from app.look import APP_NAME, ORG_NAME, icon, register_bundled_fonts
from core import gc_policy

if TYPE_CHECKING:
    from core.services import Store
    from core.services.projects import ProjectOverview
    from core.settings import Settings

SETTINGS_DATA_DIR = "data_dir"
GUI_SWITCH_INTERVAL_S = 0.0005
LEFTOVERS_WAIT_MS = 10_000  # at exit, for the start-up's retry of earlier uploads (as the CLI's listeners)
QUIT_AFTER_FIRST_PAINT = "VP_QUIT_AFTER_FIRST_PAINT"
FIRST_PAINT_MARK = "vp: first paint"


def make_application(argv: list[str]) -> QApplication:
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    # Background Python threads (dataset indexing, splits, uploads) hand the GIL to the GUI thread
    # within 0.5 ms instead of Python's default 5 ms: every Qt → Python callback (a model's
    # rowCount during a layout, an event filter) waits for the GIL, and hundreds of them in one
    # layout turned 5 ms waits into visible stalls.
    sys.setswitchinterval(GUI_SWITCH_INTERVAL_S)
    QCoreApplication.setOrganizationName(ORG_NAME)
    QCoreApplication.setApplicationName(APP_NAME)
    app = QApplication([sys.argv[0] if sys.argv else "vision-platform", *argv])
    app.setApplicationDisplayName(APP_NAME)
    app.setDesktopFileName("vision-platform")
    app.setWindowIcon(icon("app"))
    register_bundled_fonts(app.font().family())
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

    from PySide6.QtCore import QTimer

    # No garbage collection until the pages are built: start-up allocates modules, classes and widgets
    # that live for the session; the collections their imports triggered freed nothing and cost about
    # a tenth of the start (bench/bench_gui.py). Building the pages ends it and freezes them (gc_policy).
    startup = contextlib.ExitStack()
    startup.enter_context(gc_policy.paused())
    try:
        from app.main_window import MainWindow
        from app.workers import ErrorInfo, run_task, task_pool

        window = MainWindow()
    except BaseException:
        startup.close()
        raise
    started: dict[str, object] = {}

    def read_projects(_state: object) -> tuple[Store, Settings, ProjectOverview]:
        # In a worker, after the first paint: the database layer (SQLAlchemy, pydantic, migrations)
        # loads and the store opens here, never on the GUI thread. One app per data folder: a second
        # one stops here with a message naming the first (its pid and command line).
        from core.paths import data_dir, network_drive_warning
        from core.services.projects import project_overview
        from core.services.settings import claim_data_folder, load_settings, open_data_store

        started["lock"] = claim_data_folder()
        started["network_drive"] = network_drive_warning(data_dir())  # SQLite's WAL needs a local disk
        store = open_data_store(accept_recovery=True)
        return store, load_settings(store), project_overview(store)

    def open_pages(opened: tuple[Store, Settings, ProjectOverview]) -> None:
        from core.jobs.queue import JobQueue
        from core.services.settings import recovery_message

        store, settings, overview = opened
        window.attach_store(store, settings, overview)
        opened_files = [arg for arg in argv if os.path.isfile(arg)]
        if opened_files:  # image files opened with the app (the .desktop entry's %F, a drop on its icon)
            window.show_page("inference")
            window.pages["inference"].open_paths(opened_files)  # type: ignore[attr-defined]
        repaired = recovery_message(store)
        if repaired:
            window.show_start_notice("Your database was damaged and has been rebuilt", repaired)
        elif started.get("network_drive"):
            window.show_start_notice("The data folder is on a network drive", str(started["network_drive"]))
        queue = JobQueue(store, max_concurrent=settings.max_concurrent_jobs, on_event=window.job_events.emit_event)
        window.queue = queue
        queue.start()
        started["queue"] = queue
        finish_leftover_work(store)

    def attach(opened: tuple[Store, Settings, ProjectOverview]) -> None:
        try:
            open_pages(opened)
        finally:
            startup.close()

    def finish_leftover_work(store: Store) -> None:
        # What an earlier run left unfinished (MLflow runs left RUNNING, pending uploads), in the background.
        from core.services.settings import finish_leftover_work as finish

        started["leftovers"] = run_task(lambda _state: finish(store), owner=window, title="Finish earlier work",
                                        on_result=lambda done: window.statusBar().showMessage(done.summary(), 15000))

    def failed(info: ErrorInfo) -> None:
        startup.close()
        window.show_start_error(f"Your projects could not be opened: {info.message}", info.detail)

    def open_projects() -> None:
        if started:
            return
        started["task"] = run_task(read_projects, owner=window, title="Open projects", on_result=attach,
                                   on_error=failed)

    window.first_painted.connect(lambda: QTimer.singleShot(0, open_projects))
    if os.environ.get(QUIT_AFTER_FIRST_PAINT):  # bench/bench_frozen.py: cold start to first paint, any build
        window.first_painted.connect(lambda: (print(FIRST_PAINT_MARK, flush=True), app.quit()))
    QTimer.singleShot(1000, open_projects)  # no paint event (minimised start): open anyway
    window.show()
    try:
        return app.exec()
    finally:
        startup.close()
        queue = started.get("queue")
        if queue is not None:
            queue.stop()  # type: ignore[attr-defined]
        leftovers = started.get("leftovers")
        if leftovers is not None and not leftovers.done:  # type: ignore[attr-defined]
            # It uses the store closed below; an upload it could not finish resumes at the next start.
            task_pool().waitForDone(LEFTOVERS_WAIT_MS)
        from core.services.settings import close_data_stores

        close_data_stores()
        lock = started.get("lock")
        if lock is not None:
            lock.release()  # type: ignore[attr-defined]
