"""What a run produced besides checkpoints: an interactive confusion matrix with PR curves (from the
worker's val_predictions.json), and the result plots it wrote (results, confusion matrix, PR curves).

The adapters write these files (Ultralytics' ``results.png``, ``confusion_matrix*.png``,
``*curve*.png``) and report them as artifacts; this view lists them and shows the chosen one
scaled to fit. Images are decoded in a worker thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.look import HINT_STYLE
from app.workers import TaskSlots
from core.evaluation import ValPredictions
from core.services import Store

if TYPE_CHECKING:
    from app.widgets.confusion_view import ConfusionMatrixView

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
TITLES = {"results": "Training curves", "confusion_matrix": "Confusion matrix", "plot": "Plot"}


INTERACTIVE = "interactive:"


def read_artifacts(store: Store, job_id: int) -> list[tuple[str, str]]:
    """(title, path) of the job's result artifacts that exist: the interactive confusion matrix (from
    val_predictions.json) first, then images, confusion matrix and results first. Worker thread."""
    from core.services.jobs import job_artifacts

    artifacts = [a for a in job_artifacts(store, job_id) if a.exists]
    order = {"confusion_matrix": 0, "results": 1}
    found = [(a.kind, a.path) for a in artifacts if Path(a.path).suffix.lower() in IMAGE_SUFFIXES]
    found.sort(key=lambda item: (order.get(item[0], 2), Path(item[1]).name))
    interactive = [("Confusion matrix & PR curves (interactive)", INTERACTIVE + a.path) for a in artifacts
                   if a.kind == "val_predictions"][-1:]
    return interactive + [(f"{TITLES.get(kind, kind)}: {Path(path).name}", path) for kind, path in found]


def _file_key(path: str) -> tuple[str, float] | None:
    try:
        return path, Path(path).stat().st_mtime
    except OSError:
        return None


class ResultsView(QWidget):
    def __init__(self, state: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.job_id: int | None = None
        self.tasks = TaskSlots(self)  # "artifacts" (the list), "file" (the shown file): the newest wins
        self.list = QListWidget()
        self.list.setMaximumWidth(230)
        self.list.currentItemChanged.connect(self._on_current)
        self.picture = QLabel("This run produced no result plots (Ultralytics runs with plots on write them).")
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setWordWrap(True)
        self.picture.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.picture.setStyleSheet(HINT_STYLE)
        self._image: QImage | None = None
        self.confusion: ConfusionMatrixView | None = None  # built on first use (pyqtgraph plot inside)
        self._loaded_predictions: tuple[str, float] | None = None
        self.stack = QStackedWidget()
        self.stack.addWidget(self.picture)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        side = QVBoxLayout()
        side.addWidget(self.list)
        layout.addLayout(side)
        layout.addWidget(self.stack, 1)

    def set_job(self, job_id: int | None) -> None:
        self.job_id = job_id
        self.refresh()

    def refresh(self) -> None:
        job_id = self.job_id
        if job_id is None:
            self.tasks.cancel("artifacts")
            self._show([])
            return
        store = self.state.store
        self.tasks.start("artifacts", lambda _st: read_artifacts(store, job_id), title="Read results",
                         on_result=self._show)

    def titles(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def _show(self, items: list[tuple[str, str]]) -> None:
        if [(t, p) for t, p in items] == [(self.list.item(i).text(), self.list.item(i).data(Qt.ItemDataRole.UserRole))
                                         for i in range(self.list.count())]:
            return
        self.list.clear()
        for title, path in items:
            item = QListWidgetItem(title)
            item.setData(Qt.ItemDataRole.UserRole, path)
            self.list.addItem(item)
        if items:
            self.list.setCurrentRow(0)
        else:
            self._image = None
            self.stack.setCurrentWidget(self.picture)
            self.picture.setPixmap(QPixmap())
            self.picture.setText("This run produced no result plots (Ultralytics runs with plots on write them).")

    def _on_current(self, item: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if item is None:
            return
        path = str(item.data(Qt.ItemDataRole.UserRole))
        if path.startswith(INTERACTIVE):
            source = path[len(INTERACTIVE):]
            if self.confusion is not None and self._loaded_predictions == _file_key(source):
                self.stack.setCurrentWidget(self.confusion)  # unchanged: keep the user's open cell
                return
            self.tasks.start("file", lambda _st: ValPredictions.load(source), title="Read validation predictions",
                             on_result=lambda predictions: self._set_predictions(predictions, path))
            return
        self.stack.setCurrentWidget(self.picture)
        self.tasks.start("file", lambda _st: QImage(path), title="Open result image",
                         on_result=lambda image: self._set_image(image, path))

    def _set_predictions(self, predictions: ValPredictions, path: str) -> None:
        current = self.list.currentItem()
        if current is None or current.data(Qt.ItemDataRole.UserRole) != path:
            return
        if self.confusion is None:
            from app.widgets.confusion_view import ConfusionMatrixView

            self.confusion = ConfusionMatrixView()
            self.stack.addWidget(self.confusion)
        self.confusion.set_predictions(predictions)
        self._loaded_predictions = _file_key(path[len(INTERACTIVE):])
        self.stack.setCurrentWidget(self.confusion)

    def _set_image(self, image: QImage, path: str) -> None:
        current = self.list.currentItem()
        if current is None or current.data(Qt.ItemDataRole.UserRole) != path:
            return
        if image.isNull():
            self._image = None
            self.picture.setText(f"{Path(path).name} cannot be read.")
            return
        self._image = image
        self._rescale()

    def _rescale(self) -> None:
        if self._image is not None:
            self.picture.setPixmap(QPixmap.fromImage(self._image).scaled(
                self.picture.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._rescale()
