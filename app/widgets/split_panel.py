"""Split preview: strategy, ratio and seed on the left; per-class train/val counts and a bar chart.

Changing a control re-splits in a worker (debounced), so the counts follow the controls without
ever blocking the window, and the chosen split is announced with ``split_chosen`` to be saved.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.look import WARNING_COLOUR
from app.workers import ErrorInfo, TaskHandle, TaskSlots, run_task
from core.config import SPLIT_DEFAULTS, SPLIT_STRATEGIES, field_help
from core.services import datasets as datasets_service

CHART_MODULE = "app.widgets.class_chart"
_chart_import: TaskHandle | None = None
_chart_waiters: list[Callable[..., None]] = []


def preload_chart_library(on_done: Callable[..., None] | None = None) -> None:
    """Import pyqtgraph (about 1 s here) in a worker thread, never on the GUI thread.

    The main window calls this once it is ready, long before a user opens a dataset; a chart asked
    for earlier appears when the import finished. Callers waiting meanwhile are kept in a list the
    import's own result handler calls: connected to the task's signal instead, a caller that came
    after the worker emitted its result (queued, not yet delivered) was never called.
    """
    global _chart_import
    if _chart_import is None and CHART_MODULE in sys.modules or _chart_import is not None and _chart_import.done:
        if on_done is not None:
            on_done()
        return
    if on_done is not None:
        _chart_waiters.append(on_done)
    if _chart_import is None:
        application = QCoreApplication.instance()
        assert application is not None, "charts load inside the running app"
        # The import serves every panel for the life of the app: the application owns it.
        _chart_import = run_task(lambda _st: importlib.import_module(CHART_MODULE), title="Load charts",
                                 on_result=lambda _module: _chart_imported(), owner=application)


def _chart_imported() -> None:
    assert _chart_import is not None
    _chart_import.done = True  # set before the waiters run: one that asks again is answered at once
    waiters = list(_chart_waiters)
    _chart_waiters.clear()
    for waiter in waiters:
        owner = getattr(waiter, "__self__", None)
        if not isinstance(owner, QObject) or shiboken6.isValid(owner):  # a panel deleted meanwhile is skipped
            waiter()


def chart_library_loaded() -> bool:
    return CHART_MODULE in sys.modules and (_chart_import is None or _chart_import.done)


_SIDE_TITLES = {"train": "Train", "val": "Val", "test": "Test"}


def _summary(result: Any, strategy: str) -> str:
    """"1,200 training images, 300 validation images" (+ test, + which strategy "auto" chose)."""
    text = f"{len(result.train):,} training images, {len(result.val):,} validation images"
    if result.test:
        text += f", {len(result.test):,} test images (never trained on)"
    if result.strategy != strategy:
        text += f" — {strategy}: {'the dataset’s own split' if result.strategy == 'predefined' else result.strategy}"
    return text


class SplitPanel(QWidget):
    split_chosen = Signal(dict)  # {"strategy", "ratio", "seed"}: save it with the dataset
    split_result = Signal(object)  # {rel: "train" | "val" | "test"} (the image grid filters by it)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        tips = field_help()
        self.strategy = QComboBox()
        self.strategy.addItems(list(SPLIT_STRATEGIES))
        self.strategy.setToolTip(tips.get("split.strategy", ""))
        self.ratio = QDoubleSpinBox()
        self.ratio.setRange(0.05, 0.95)
        self.ratio.setSingleStep(0.05)
        self.ratio.setDecimals(2)
        self.ratio.setValue(SPLIT_DEFAULTS.ratio)
        self.ratio.setToolTip(tips.get("split.ratio", ""))
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setValue(SPLIT_DEFAULTS.seed)
        self.seed.setToolTip(tips.get("split.seed", ""))
        form = QFormLayout()
        form.addRow("Strategy", self.strategy)
        form.addRow("Train fraction", self.ratio)
        form.addRow("Seed", self.seed)
        # Word-wrapped lines of any length: never squeezed below the height of their wrapped text.
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.warnings = QLabel()
        self.warnings.setWordWrap(True)
        self.warnings.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.warnings.setStyleSheet(f"color: {WARNING_COLOUR};")
        left = QVBoxLayout()
        left.addLayout(form)
        left.addWidget(self.summary)
        left.addWidget(self.warnings)
        left.addStretch(1)
        left_widget = QWidget()
        left_widget.setLayout(left)
        self._left = left
        left_widget.setMaximumWidth(300)

        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Class", "Train", "Val", "Total"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        # The chart (pyqtgraph, ~1 s to import on a slow machine) is created on first use, so
        # it never delays the app's first paint.
        self.chart: Any = None
        self._chart_area = QSplitter(Qt.Orientation.Vertical)
        right = self._chart_area
        right.addWidget(self.table)

        layout = QHBoxLayout(self)
        layout.addWidget(left_widget)
        layout.addWidget(right, 1)

        self._index: Any = None
        self._stale = False  # a dataset is shown whose preview is not computed yet
        self.tasks = TaskSlots(self)  # "split": a newer choice replaces the older preview
        self.counts: dict[str, dict[str, int]] = {}  # images per class and side (the table)
        self.objects: dict[str, dict[str, int]] | None = None  # objects per class and side (the chart), if annotated
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(120)
        self._debounce.timeout.connect(self._resplit)
        self.strategy.currentTextChanged.connect(self._on_control_change)
        self.ratio.valueChanged.connect(self._on_control_change)
        self.seed.valueChanged.connect(self._on_control_change)

    def set_index(self, index: Any, split_config: dict[str, Any] | None, *,
                  has_predefined_split: bool | None = None) -> None:
        """Show a dataset; ``split_config`` is the one saved with it (or None for defaults).
        Which split "auto" means is ``split_dataset``'s to decide (``has_predefined_split`` is kept for
        callers; the preview shows the resolved strategy)."""
        del has_predefined_split
        self.tasks.cancel("split")  # the preview of the dataset shown before is not wanted any more
        self._index = index
        # The panel has no split-file control: a saved file does not decide its strategy.
        saved = {key: value for key, value in (split_config or {}).items() if key != "file"}
        choice = datasets_service.split_choice(saved=saved)
        for widget in (self.strategy, self.ratio, self.seed):
            widget.blockSignals(True)
        self.strategy.setCurrentText(choice["strategy"])
        self.ratio.setValue(choice["ratio"])
        self.seed.setValue(choice["seed"])
        for widget in (self.strategy, self.ratio, self.seed):
            widget.blockSignals(False)
        # The preview is computed when it is looked at (this tab shown, or the image grid filtered by
        # split): for 20,000 images it is a few hundred ms of Python in a worker thread, which would
        # compete for the GIL with the grid's first paint if it started when the dataset opens.
        self._stale = index is not None
        if index is not None and self.isVisible():
            self.ensure_split()

    def ensure_split(self) -> None:
        """Compute the preview now if the shown dataset has none yet."""
        if self._stale:
            self._resplit(save=False)

    def current(self) -> dict[str, Any]:
        return {"strategy": self.strategy.currentText(), "ratio": round(self.ratio.value(), 4), "seed": self.seed.value()}

    def busy(self) -> bool:
        return self.tasks.running("split") or self._debounce.isActive()

    def _on_control_change(self, *_: Any) -> None:
        self._debounce.start()

    def _resplit(self, save: bool = True) -> None:
        if self._index is None:
            return
        self._stale = False
        choice = self.current()
        index = self._index
        self._show_text("Splitting…")

        def work(_state: Any) -> Any:
            # Everything proportional to the image count happens here, not on the GUI thread.
            preview = datasets_service.preview_split(index, choice)
            annotated = any(record.shapes for record in index.images)
            objects = preview.result.object_counts(list(index.class_names)) if annotated else None
            return preview.result, preview.counts, preview.split_of, objects

        self.tasks.start("split", work, title="Split preview",
                         on_result=lambda answer: self._on_split(answer, choice, save),
                         on_error=self._on_split_error)

    def _on_split(self, answer: Any, choice: dict[str, Any], save: bool) -> None:
        result, self.counts, split_of, self.objects = answer
        self._fill(self.counts)
        self._show_text(_summary(result, choice["strategy"]), "\n".join(result.warnings))
        self.split_result.emit(split_of)
        if save:
            self.split_chosen.emit(choice)

    def _on_split_error(self, info: ErrorInfo) -> None:
        self.counts = {}
        self._fill({})
        self._show_text("", f"This split cannot be used: {info.message}")

    def _show_text(self, summary: str, warnings: str | None = None) -> None:
        """New summary (and warnings) laid out at once: the column's lines get their wrapped height
        now, not on a later event-loop turn (a screenshot taken in between showed one clipped line)."""
        self.summary.setText(summary)
        if warnings is not None:
            self.warnings.setText(warnings)
        self._left.activate()

    def _fill(self, counts: dict[str, dict[str, int]]) -> None:
        sides = ["train", "val", "test"] if any("test" in c for c in counts.values()) else ["train", "val"]
        self.table.setColumnCount(len(sides) + 2)
        self.table.setHorizontalHeaderLabels(["Class", *(_SIDE_TITLES[side] for side in sides), "Total"])
        self.table.setRowCount(len(counts))
        for row, (name, split_counts) in enumerate(counts.items()):
            values = [split_counts.get(side, 0) for side in sides]
            for column, value in enumerate((name, *values, sum(values))):
                item = QTableWidgetItem(str(value) if column else name)
                if column:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, item)
        if self.chart is not None:
            self._show_chart()
        elif self.isVisible():
            preload_chart_library(self._on_chart_library)

    def showEvent(self, event: Any) -> None:
        # A pyqtgraph widget takes 100-200 ms to build: only when the chart is first looked at.
        super().showEvent(event)
        self.ensure_split()
        if self.chart is None and self.counts:
            preload_chart_library(self._on_chart_library)

    def _on_chart_library(self, *_: Any) -> None:
        if self.chart is None:
            from app.widgets.class_chart import ClassChart  # already imported: instant

            self.chart = ClassChart()
            self._chart_area.insertWidget(0, self.chart)
            self._chart_area.setSizes([260, 200])
        self._show_chart()

    def _show_chart(self) -> None:
        """Objects per class when the dataset has annotations (a labelme group is one), else images."""
        has_test = any("test" in c for c in self.counts.values())
        sides = ("train", "val", "test") if has_test else ("train", "val")
        if self.objects is not None:
            self.chart.set_counts(self.objects, sides, unit="objects")
        else:
            self.chart.set_counts(self.counts, sides, unit="images")
