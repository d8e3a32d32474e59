"""Interactive confusion matrix and PR curves from a run's ``val_predictions.json``.

Cells are coloured by their share of the true class's images; clicking a cell lists the validation
images in it, and clicking an image shows it with its prediction and ground truth.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.look import class_colour, plural
from core.evaluation import ValPredictions


class ConfusionMatrixView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.predictions: ValPredictions | None = None
        self.title = QLabel()
        self.table = QTableWidget()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.cellClicked.connect(self.show_cell)
        self.cell_title = QLabel("Click a cell to list its images")
        self.images = QListWidget()
        self.images.currentItemChanged.connect(self._on_image)
        self.preview = QLabel()
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumHeight(120)
        self.verdict = QLabel()
        self.verdict.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.pr_plot = pg.PlotWidget(background=None)
        self.pr_plot.setLabel("bottom", "recall")
        self.pr_plot.setLabel("left", "precision")
        self.pr_plot.setXRange(0, 1)
        self.pr_plot.setYRange(0, 1.05)
        self.pr_plot.setTitle("Precision–recall (one class vs the rest)")
        self.pr_legend = self.pr_plot.addLegend()

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.title)
        left_layout.addWidget(self.table, 2)
        left_layout.addWidget(self.pr_plot, 2)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.cell_title)
        right_layout.addWidget(self.images, 1)
        right_layout.addWidget(self.preview, 1)
        right_layout.addWidget(self.verdict)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

    def set_predictions(self, predictions: ValPredictions) -> None:
        self.predictions = predictions
        names = predictions.class_names
        matrix = predictions.confusion()
        total = int(matrix.sum())
        correct = int(matrix.trace())
        epoch = f" (best model, epoch {predictions.epoch})" if predictions.epoch else ""
        self.title.setText(f"{correct} of {total} validation images right{epoch} · rows: true class, columns: predicted")
        self.table.setRowCount(len(names))
        self.table.setColumnCount(len(names))
        self.table.setVerticalHeaderLabels([f"true {name}" for name in names])
        self.table.setHorizontalHeaderLabels([f"pred {name}" for name in names])
        for row in range(len(names)):
            row_total = max(int(matrix[row].sum()), 1)
            for column in range(len(names)):
                count = int(matrix[row, column])
                cell = QTableWidgetItem(str(count))
                cell.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                share = count / row_total
                base = QColor(46, 125, 50) if row == column else QColor(198, 40, 40)
                colour = QColor(base)
                colour.setAlphaF(0.12 + 0.8 * share if count else 0.0)
                cell.setBackground(QBrush(colour))
                cell.setToolTip(f"{count} images of {names[row]} predicted as {names[column]} ({share:.0%} of {names[row]})")
                self.table.setItem(row, column, cell)
        self.table.resizeColumnsToContents()
        self.images.clear()
        self.preview.clear()
        self.verdict.clear()
        self.pr_plot.clear()
        self.pr_legend.clear()
        for class_id, name in enumerate(names):
            precision, recall, average_precision = predictions.pr_curve(class_id)
            if len(precision):
                self.pr_plot.plot(recall, precision, pen=pg.mkPen(class_colour(class_id), width=2),
                                  name=f"{name} (AP {average_precision:.2f})")

    def cell_count(self, row: int, column: int) -> int:
        item = self.table.item(row, column)
        return int(item.text()) if item is not None else 0

    def show_cell(self, row: int, column: int) -> None:
        if self.predictions is None:
            return
        names = self.predictions.class_names
        items = self.predictions.cell_items(row, column)
        self.cell_title.setText(f"True {names[row]}, predicted {names[column]}: {plural(len(items), 'image')}")
        self.images.clear()
        for entry in items:
            list_item = QListWidgetItem(Path(entry["path"]).name)
            list_item.setData(Qt.ItemDataRole.UserRole, entry)
            list_item.setToolTip(entry["path"])
            self.images.addItem(list_item)
        if items:
            self.images.setCurrentRow(0)

    def _on_image(self, item: QListWidgetItem | None, _previous: Any) -> None:
        if item is None or self.predictions is None:
            return
        entry = item.data(Qt.ItemDataRole.UserRole)
        names = self.predictions.class_names
        pixmap = QPixmap(entry["path"])
        if pixmap.isNull():
            self.preview.setText(f"{Path(entry['path']).name} cannot be opened (moved or deleted?)")
        else:
            self.preview.setPixmap(pixmap.scaled(self.preview.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                                 Qt.TransformationMode.FastTransformation))
        scores = entry.get("scores") or []
        confidence = f" ({scores[entry['pred']]:.0%})" if len(scores) > entry["pred"] else ""
        mark = "✓" if entry["true"] == entry["pred"] else "✗"
        self.verdict.setText(f"{mark} predicted {names[entry['pred']]}{confidence} · ground truth {names[entry['true']]}")
