"""The main window: pages, menus and shortcuts, status bar, projects, geometry, settings, imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtGui import QKeySequence

from core.services.projects import list_projects
from tests.gui.conftest import make_helpers

ROOT = Path(__file__).resolve().parents[2]


def test_window_shows_default_project_pages_and_status(window: Any) -> None:
    assert window.sidebar.project_names() == ["Default"]
    assert set(window.pages) == {"datasets", "train", "jobs", "inference"}
    assert window.current_page() == "datasets"
    assert window.open_action.shortcut() == QKeySequence(QKeySequence.StandardKey.Open)
    assert window.new_job_action.shortcut() == QKeySequence(QKeySequence.StandardKey.New)
    assert window.quit_action.shortcut().toString() == "Ctrl+Q"
    # Primed sysinfo has only the CPU.
    assert "No GPU" in window.gpu_label.text()
    assert window.online_label.text() == "Offline mode"
    assert window.datasets_page.stack.currentWidget() is window.datasets_page.empty
    assert not window.windowIcon().isNull()


def test_new_job_shortcut_opens_configurator_and_jobs_empty_state_leads_there(window: Any, qtbot: Any) -> None:
    window.new_job_action.trigger()
    assert window.current_page() == "train"
    window.show_page("jobs")
    page = window.jobs_page
    assert page.stack.currentWidget() is page.empty
    assert "No jobs yet" in page.empty.text.text()
    button = page.empty.findChildren(type(window.train_page.start_button))[0]
    button.click()
    assert window.current_page() == "train"


def test_projects_create_rename_delete(window: Any, qtbot: Any, store: Any) -> None:
    """Each edit runs in a worker: the test waits for what the user sees (the tree, the message)."""
    sidebar = window.sidebar
    default_id = window.state.project_id
    sidebar.create_named("Cats")
    qtbot.waitUntil(lambda: sidebar.project_names() == ["Default", "Cats"], timeout=10_000)
    qtbot.waitUntil(lambda: window.state.project_id != default_id, timeout=10_000)  # the new project is selected
    project_id = window.state.project_id
    assert window.state.overview.project(project_id).name == "Cats"
    sidebar.create_named("Cats")  # duplicate names are refused in place
    qtbot.waitUntil(lambda: "already exists" in sidebar.message.text(), timeout=10_000)
    assert sidebar.project_names() == ["Default", "Cats"]
    sidebar.rename(project_id, "Dogs")
    qtbot.waitUntil(lambda: sidebar.project_names() == ["Default", "Dogs"], timeout=10_000)
    assert not sidebar.message.text()  # a successful edit clears the earlier refusal
    assert next(p for p in list_projects(store) if p.name == "Default").id == default_id
    sidebar.delete(default_id)
    qtbot.waitUntil(lambda: "cannot be deleted" in sidebar.message.text(), timeout=10_000)
    sidebar.delete(project_id)
    qtbot.waitUntil(lambda: sidebar.project_names() == ["Default"], timeout=10_000)
    assert window.state.project_id == default_id
    assert [p.name for p in list_projects(store)] == ["Default"]


def test_geometry_is_restored(qtbot: Any, store: Any, qsettings_dir: Path) -> None:
    from app.main_window import MainWindow

    first = MainWindow(store, helpers=make_helpers())
    qtbot.addWidget(first)
    first.resize(1100, 720)
    first.move(13, 17)
    first.show()
    qtbot.waitExposed(first)
    saved_size = first.size()  # may be larger than asked for: the window's minimum size wins
    first.close()
    assert QSettings().value("window/geometry") is not None
    second = MainWindow(store, helpers=make_helpers())
    qtbot.addWidget(second)
    assert second.size() == saved_size
    default = MainWindow(store, helpers=make_helpers())  # proves the size came from QSettings
    qtbot.addWidget(default)
    QSettings().remove("window/geometry")
    third = MainWindow(store, helpers=make_helpers())
    qtbot.addWidget(third)
    assert third.size() != saved_size
    third.close()
    default.close()
    second.close()


def test_settings_dialog_saves_settings(window: Any, qtbot: Any, store: Any) -> None:
    from core.settings import Settings

    dialog = window.open_settings()
    qtbot.waitExposed(dialog)
    assert dialog.keyring_notice.text()  # where keys go is always said
    dialog.offline.setChecked(False)
    dialog.max_jobs.setValue(2)
    dialog.endpoint.setText("http://127.0.0.1:9")
    dialog.accept()  # saved in a worker: the dialog closes once the settings are stored
    qtbot.waitUntil(lambda: dialog.result() == dialog.DialogCode.Accepted, timeout=10_000)
    saved = Settings.load(store)
    assert saved.offline_mode is False
    assert saved.max_concurrent_jobs == 2
    assert saved.r2_endpoint_url == "http://127.0.0.1:9"
    assert window.online_label.text() == "Online"


def test_test_connection_reports_failure_in_place(window: Any, qtbot: Any) -> None:
    dialog = window.open_settings()
    dialog.endpoint.setText("http://127.0.0.1:9")  # nothing listens on the discard port
    dialog.access_key.setText("key")
    dialog.secret.setText("secret")
    dialog.run_test()
    qtbot.waitUntil(lambda: dialog.test_result.text() not in ("", "Connecting…"), timeout=60_000)
    assert dialog.test_result.text().startswith("Connection failed")
    dialog.reject()


def test_app_imports_no_ml_framework() -> None:
    code = (
        "import os, sys; os.environ['QT_QPA_PLATFORM']='offscreen';"
        "import app.main, app.main_window, app.pages.train_page, app.pages.datasets_page;"
        "bad=[m for m in ('torch','timm','ultralytics','mlflow','torchvision','transformers') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_main_entry_point_paints_then_opens_projects(qapp: Any, qsettings_dir: Path, vp_home: Path) -> None:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.main import main
    from app.main_window import MainWindow

    seen: dict[str, Any] = {}

    def poll() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        if windows and windows[0].state is not None:
            seen["projects"] = windows[0].sidebar.project_names()
            seen["queue"] = windows[0].queue
            windows[0].close()  # last window closed: exec() returns
        else:
            QTimer.singleShot(20, poll)

    QTimer.singleShot(0, poll)
    assert main([]) == 0
    assert seen["projects"] == ["Default"]
    assert seen["queue"] is not None
    assert (vp_home / "vision_platform.db").is_file()
