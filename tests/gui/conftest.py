"""GUI test fixtures: offscreen Qt, a private data dir and QSettings per test, a real SQLite store.

The environment is set before anything from ``app`` is imported, so no test can touch the user's
real data folder or window settings.
"""

from __future__ import annotations

import functools
import os
import tempfile

# An offscreen screen of a real desktop size (the default, 800x600, is smaller than the window's
# minimum size, so restoreGeometry would shrink windows).
_SCREEN = os.path.join(tempfile.mkdtemp(prefix="vp-gui-screen-"), "offscreen.json")
with open(_SCREEN, "w", encoding="utf-8") as _file:
    _file.write('{"screens": [{"name": "Offscreen", "x": 0, "y": 0, "width": 1920, "height": 1200, '
                '"logicalDpiX": 96, "logicalDpiY": 96, "dpr": 1}]}')
os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={_SCREEN}"
os.environ["VP_HOME"] = tempfile.mkdtemp(prefix="vp-gui-home-")

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from PySide6.QtCore import QCoreApplication, QSettings, QThreadPool  # noqa: E402

# What `vision-platform models FW '*'` and `sysinfo` print (trimmed lists): the window is built
# with a primed helper cache so tests do not start a torch-importing subprocess each time.
# test_helper_process.py runs the real subprocess.
SYSINFO = {"devices": [{"id": "cpu", "name": "CPU", "memory_bytes": None}], "versions": {}}
MODELS = {
    "timm": {"framework": "timm", "tasks": ["classify"],
             "models": ["resnet18", "resnet34", "resnet50", "efficientnet_b0", "vit_tiny_patch16_224"]},
    "ultralytics": {"framework": "ultralytics", "tasks": ["classify", "detect", "segment", "pose"],
                    "models": ["yolo11n.yaml", "yolo11n-seg.yaml", "yolo11n-cls.yaml", "yolo11n-pose.yaml"]},
}


@pytest.fixture
def vp_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("VP_HOME", str(home))
    return home


@pytest.fixture
def qsettings_dir(tmp_path: Path, qapp: Any) -> Iterator[Path]:
    folder = tmp_path / "qsettings"
    folder.mkdir()
    QCoreApplication.setOrganizationName("VisionPlatformTests")
    QCoreApplication.setApplicationName("Vision Platform Tests")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    yield folder


@pytest.fixture
def store(vp_home: Path) -> Iterator[Any]:
    from core.db.engine import close_all_stores, open_store

    yield open_store(vp_home / "vision_platform.db")
    QThreadPool.globalInstance().waitForDone(10_000)
    close_all_stores()


REPO_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def shots_dir(tmp_path: Path) -> Path:
    """Where a test saves its screenshots: a temp dir, or ``docs/screenshots/`` with VP_REFRESH_SCREENSHOTS=1.

    A normal test run never rewrites tracked files; ``VP_REFRESH_SCREENSHOTS=1 make test`` refreshes the
    pictures the README links to.
    """
    folder = REPO_SCREENSHOTS if os.environ.get("VP_REFRESH_SCREENSHOTS") == "1" else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@functools.cache
def declarations() -> dict[str, Any]:
    """Every adapter's real declarations (`vision-platform models --declarations`: no framework import)."""
    from core.frameworks import run_helper

    frameworks: dict[str, Any] = run_helper("--declarations")["frameworks"]
    return frameworks


def make_helpers() -> Any:
    from app.helper_process import HelperService

    helpers = HelperService()
    catalog = declarations()
    helpers.prime(sysinfo=SYSINFO, catalog=catalog,
                  models={name: {**catalog[name], **payload, "listed": True} for name, payload in MODELS.items()})
    return helpers


@pytest.fixture
def window(qtbot: Any, store: Any, qsettings_dir: Path) -> Iterator[Any]:
    from app.main_window import MainWindow

    win = MainWindow(store, helpers=make_helpers())
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()
    win.datasets_page.browser.model.loader.wait(10_000)
    QThreadPool.globalInstance().waitForDone(10_000)


@pytest.fixture
def queue(window: Any, store: Any) -> Iterator[Any]:
    """A job queue for ``window`` without tracking or sync listeners (tests that run real jobs)."""
    from core.jobs.queue import JobQueue

    job_queue = JobQueue(store, on_event=window.job_events.emit_event, poll_interval=0.2,
                         listeners_factory=lambda _store: [])
    window.queue = job_queue
    job_queue.start()
    yield job_queue
    job_queue.stop()


def wait_dataset(qtbot: Any, win: Any, timeout: int = 20_000) -> Any:
    """Wait until the page shows an opened dataset (or a banner) and return the loaded dataset."""
    qtbot.waitUntil(lambda: not win.datasets_page.is_busy(), timeout=timeout)
    return win.state.dataset


def drop_path(win: Any, path: Path) -> None:
    """Deliver a real QDropEvent for ``path`` to the window, or any widget (the drag-and-drop code path)."""
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    pos = win.rect().center()
    enter = QDragEnterEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(win, enter)
    assert enter.isAccepted(), "the window refused the drag"
    drop = QDropEvent(QPointF(pos), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(win, drop)
