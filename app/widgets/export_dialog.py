"""The Export dialog: a job's checkpoint to ONNX, TorchScript or an Ultralytics format, with parity numbers.

The GUI twin of ``vision-platform export`` (``core.services.export``). Formats come from the export
worker (Ultralytics lists its exporter's table); one that cannot be produced here is greyed with the
missing package as the reason. The export runs in the worker through ``TaskSlots`` (the dialog owns
its tasks: closing it cancels the export, which kills the worker and leaves no file).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.workers import ErrorInfo, TaskSlots, TaskState
from core.services import Store
from core.services import export as export_service

TRAINING_SIZE = 0  # the image-size box's "use the training size" value


class ExportDialog(QDialog):
    def __init__(self, store: Store, job_id: int, kind: str = "best", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store, self.job_id, self.kind = store, job_id, kind
        self.source: export_service.ExportSource | None = None
        self.outcome: export_service.ExportOutcome | None = None
        self.tasks = TaskSlots(self)  # "formats", "export"
        self.setWindowTitle(f"Export job {job_id} ({kind} checkpoint)")
        self.formats = QListWidget()
        self.dynamic_batch = QCheckBox("Dynamic batch size")
        self.half = QCheckBox("Half precision (float16, CUDA GPU only)")
        self.imgsz = QSpinBox()
        self.imgsz.setRange(TRAINING_SIZE, 4096)
        self.imgsz.setSpecialValueText("training size")
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.hide()
        self.status = QLabel("Reading the formats…")
        self.status.setWordWrap(True)
        self.report = QPlainTextEdit()
        self.report.setReadOnly(True)
        self.export_button = QPushButton("Export")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self.start_export)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        self._layout(close)
        self.tasks.start("formats", self._read_formats, title="Read export formats", on_result=self._show_formats,
                         on_error=self._on_error)

    def _layout(self, close: QPushButton) -> None:
        options = QFormLayout()
        options.addRow(self.dynamic_batch)
        options.addRow(self.half)
        options.addRow("Image size", self.imgsz)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Format"))
        layout.addWidget(self.formats, 1)
        layout.addLayout(options)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.report, 1)
        layout.addLayout(buttons)

    # -- formats ------------------------------------------------------------------------------------
    def _read_formats(self, _state: TaskState) -> tuple[Any, list[export_service.FormatChoice]]:
        source = export_service.job_source(self.store, self.job_id, self.kind)
        return source, export_service.list_formats(source.framework)

    def _show_formats(self, answer: tuple[Any, list[export_service.FormatChoice]]) -> None:
        self.source, choices = answer
        self.formats.clear()
        for choice in choices:
            text = choice.label + ("" if choice.available else f" — {choice.reason}")
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, choice.name)
            item.setToolTip(choice.reason or ("parity checked after export" if choice.verified else "not verified"))
            if not choice.available:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled & ~Qt.ItemFlag.ItemIsSelectable)
            self.formats.addItem(item)
        self.formats.setCurrentRow(0)
        self.export_button.setEnabled(any(c.available for c in choices))
        self.status.setText(f"{self.source.framework} {self.source.task} model: {self.source.checkpoint}")

    def selected_format(self) -> str | None:
        item = self.formats.currentItem()
        return None if item is None else str(item.data(Qt.ItemDataRole.UserRole))

    def select_format(self, name: str) -> None:
        for row in range(self.formats.count()):
            if self.formats.item(row).data(Qt.ItemDataRole.UserRole) == name:
                self.formats.setCurrentRow(row)

    # -- export -------------------------------------------------------------------------------------
    def start_export(self) -> None:
        fmt, source = self.selected_format(), self.source
        if fmt is None or source is None:
            return
        dynamic_batch, half, imgsz = self.dynamic_batch.isChecked(), self.half.isChecked(), self.imgsz.value() or None
        store = self.store

        def work(state: TaskState) -> export_service.ExportOutcome:
            return export_service.export_model(store, source, fmt, dynamic_batch=dynamic_batch, half=half, imgsz=imgsz,
                                               on_progress=lambda m: state.progress(0, 0, m),
                                               cancel=lambda: state.cancelled)

        self.export_button.setEnabled(False)
        self.progress.show()
        self.report.clear()
        self.tasks.start("export", work, title="Export model", on_result=self._show_result, on_error=self._on_error,
                         on_progress=lambda _d, _t, message: self.status.setText(message))

    def _show_result(self, outcome: export_service.ExportOutcome) -> None:
        self.outcome = outcome
        self.progress.hide()
        self.export_button.setEnabled(True)
        self.status.setText(("Verified: " if outcome.verified else "Exported but NOT verified: ") + str(outcome.file))
        self.status.setStyleSheet("" if outcome.verified else "color: #b35c00;")
        lines = export_service.parity_lines(outcome.parity) + [f"model card: {outcome.card}"]
        self.report.setPlainText("\n".join(lines + [f"warning: {w}" for w in outcome.warnings]))

    def done(self, result: int) -> None:
        """Closing cancels a running export (its worker is killed; nothing is written)."""
        self.tasks.cancel_all()
        super().done(result)

    def _on_error(self, info: ErrorInfo) -> None:
        self.progress.hide()
        self.export_button.setEnabled(self.source is not None)
        self.status.setText(f"Export failed: {info.message}")
        self.status.setStyleSheet("color: #c0392b;")
