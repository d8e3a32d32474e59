"""Interactive confusion matrix and PR curves from a run's ``val_predictions.json``.

Cells are coloured by their share of the true class's images (classification) or boxes (detection,
with a background row and column); clicking a cell lists the validation images in it, and clicking
an image shows it with its prediction and ground truth (boxes drawn for detection runs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPen, QPixmap
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
from core.evaluation import DetectionValPredictions, ValPredictions


class ConfusionMatrixView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.predictions: ValPredictions | DetectionValPredictions | None = None
        self.drawn_boxes: list[tuple[str, int]] = []  # what the preview shows, for tests and screen readers
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
        self.verdict.setWordWrap(True)
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
        right.setMinimumWidth(300)  # room for a readable preview with its boxes
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

    def set_predictions(self, predictions: ValPredictions | DetectionValPredictions) -> None:
        self.predictions = predictions
        names = predictions.class_names
        labels = predictions.matrix_labels
        matrix = predictions.confusion()
        unit = predictions.unit
        epoch = f" (best model, epoch {predictions.epoch})" if predictions.epoch else ""
        self.title.setText(f"{predictions.summary()}{epoch} · rows: true class, columns: predicted")
        self.title.setWordWrap(True)
        if isinstance(predictions, DetectionValPredictions):
            self.pr_plot.setTitle(f"Precision–recall per class at IoU {predictions.iou_threshold:g}")
        else:
            self.pr_plot.setTitle("Precision–recall (one class vs the rest)")
        self.table.setRowCount(len(labels))
        self.table.setColumnCount(len(labels))
        self.table.setVerticalHeaderLabels([f"true {name}" for name in labels])
        self.table.setHorizontalHeaderLabels([f"pred {name}" for name in labels])
        for row in range(len(labels)):
            row_total = max(int(matrix[row].sum()), 1)
            for column in range(len(labels)):
                count = int(matrix[row, column])
                cell = QTableWidgetItem(str(count))
                cell.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                share = count / row_total
                right = row == column and row < len(names)
                base = QColor(46, 125, 50) if right else QColor(198, 40, 40)
                colour = QColor(base)
                colour.setAlphaF(0.12 + 0.8 * share if count else 0.0)
                cell.setBackground(QBrush(colour))
                cell.setToolTip(f"{plural(count, unit)} of {labels[row]} predicted as {labels[column]} "
                                f"({share:.0%} of {labels[row]})")
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
        labels = self.predictions.matrix_labels
        items = self.predictions.cell_items(row, column)
        self.cell_title.setText(f"True {labels[row]}, predicted {labels[column]}: {plural(len(items), 'image')}")
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
        pixmap = QPixmap(entry["path"])
        if pixmap.isNull():
            self.preview.setText(f"{Path(entry['path']).name} cannot be opened (moved or deleted?)")
        else:
            shapes = self.predictions.overlay(entry)
            if shapes:
                pixmap = self._draw_boxes(pixmap, shapes)
                self.preview.setToolTip("dashed green: ground truth · solid, class colour: predictions")
            self.preview.setPixmap(pixmap.scaled(self.preview.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                                 Qt.TransformationMode.SmoothTransformation))
        self.verdict.setText(self.predictions.verdict(entry))

    def _draw_boxes(self, pixmap: QPixmap, shapes: list[tuple[str, int, list[float], float | None]]) -> QPixmap:
        """Ground truth as dashed green boxes, predictions in their class colour with confidence.
        Drawn at a size where lines and labels stay readable after the preview scales the image."""
        assert self.predictions is not None
        names = self.predictions.class_names
        scale = max(1.0, 480.0 / max(pixmap.width(), pixmap.height()))
        canvas = pixmap.scaled(int(pixmap.width() * scale), int(pixmap.height() * scale),
                               Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        painter = QPainter(canvas)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        font = painter.font()
        font.setPixelSize(13)
        painter.setFont(font)
        self.drawn_boxes = []
        for kind, class_id, box, confidence in shapes:
            x1, y1, x2, y2 = (value * scale for value in box)
            if kind == "truth":
                pen = QPen(QColor(46, 160, 67), 2, Qt.PenStyle.DashLine)
                text = f"{names[class_id]} (truth)" if class_id < len(names) else "truth"
            else:
                pen = QPen(QColor(class_colour(class_id)), 2)
                label = names[class_id] if class_id < len(names) else str(class_id)
                text = f"{label} {confidence:.0%}" if confidence is not None else label
            painter.setPen(pen)
            painter.drawRect(int(x1), int(y1), int(x2 - x1), int(y2 - y1))
            painter.drawText(int(x1) + 2, int(y2 if kind == "truth" else y1) + (-3 if kind == "truth" else 14), text)
            self.drawn_boxes.append((kind, class_id))
        painter.end()
        return canvas
