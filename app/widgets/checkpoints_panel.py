"""A job's checkpoints (best/last): epoch, metric, size, sha256, local path, R2 URL, sync state.

Actions: upload now (the storage outbox, retried at once), download (an r2:// checkpoint into the
local cache), reveal the file in the file manager. Storage is another module's work and may be
unavailable (no credentials, sync off): the reason is shown in place, never a silent no-op.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.look import HINT_STYLE, format_bytes
from app.widgets.common import Banner
from app.workers import ErrorInfo, TaskSlots
from core.services import ServiceError
from core.services import checkpoints as checkpoint_service
from core.services.checkpoints import CheckpointInfo
from core.services.jobs import format_metric

COLUMNS = ("Kind", "Epoch", "Metric", "Size", "SHA-256", "Local path", "R2 URL", "Sync")


CheckpointRow = CheckpointInfo  # the panel shows the checkpoints service's plain rows


def storage_available() -> str | None:
    """None when the storage module is importable, else why the upload/download buttons are off."""
    try:
        import core.storage.client  # noqa: F401
        import core.storage.outbox  # noqa: F401
    except Exception as exc:  # a missing optional dependency (boto3) or an unfinished module
        return f"Cloud storage is not available in this build: {exc}"
    return None


class CheckpointsPanel(QWidget):
    changed = Signal()  # a sync state may have changed: the jobs table refreshes

    def __init__(self, state: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.job_id: int | None = None
        self.rows: list[CheckpointRow] = []
        self.tasks = TaskSlots(self)  # "rows" (a new read replaces the old), "action" (upload/download)
        self.banner = Banner()
        self.empty = QLabel("No checkpoints yet: the first one is written at the end of the first epoch.")
        self.empty.setStyleSheet(HINT_STYLE)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.upload_button = QPushButton("Upload now")
        self.upload_button.clicked.connect(self.upload_selected)
        self.download_button = QPushButton("Download")
        self.download_button.clicked.connect(self.download_selected)
        self.reveal_button = QPushButton("Show in folder")
        self.reveal_button.clicked.connect(self.reveal_selected)
        self.export_button = QPushButton("Export…")  # ONNX / TorchScript / … with a parity check (issue 14)
        self.export_button.clicked.connect(self.export_selected)
        buttons = QHBoxLayout()
        for button in (self.upload_button, self.download_button, self.reveal_button, self.export_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.banner)
        layout.addWidget(self.empty)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self._storage_problem = storage_available()
        self._update_buttons()

    def set_job(self, job_id: int | None) -> None:
        if job_id != self.job_id:
            self.banner.clear()
        self.job_id = job_id
        self.refresh()

    def refresh(self) -> None:
        job_id = self.job_id
        if job_id is None:
            self.tasks.cancel("rows")
            self._show([])
            return
        store = self.state.store
        # A job deleted meanwhile has no checkpoints to show: its read error only empties the table.
        self.tasks.start("rows", lambda _st: checkpoint_service.list_checkpoints(store, job_id),
                         title="Read checkpoints", on_result=self._show, on_error=lambda _info: self._show([]))

    def _show(self, rows: list[CheckpointRow]) -> None:
        selected = self.selected()
        self.rows = rows
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            values = (
                row.kind, "" if row.epoch is None else str(row.epoch), format_metric(row.metric_name, row.metric_value),
                format_bytes(row.size_bytes) if row.size_bytes else "", (row.sha256 or "")[:16],
                row.path if row.exists else f"{row.path} (missing)", row.r2_url or "", row.sync_state,
            )
            for c, value in enumerate(values):
                item = QTableWidgetItem(value)
                if c == 4 and row.sha256:
                    item.setToolTip(row.sha256)
                if c == 5:
                    item.setToolTip(row.path)
                self.table.setItem(r, c, item)
            if selected is not None and row.id == selected.id:
                self.table.selectRow(r)
        if rows and not self.table.selectedItems():
            self.table.selectRow(0)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)
        self.empty.setVisible(not rows)
        self._update_buttons()

    def selected(self) -> CheckpointRow | None:
        indexes = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not indexes or indexes[0].row() >= len(self.rows):
            return None
        return self.rows[indexes[0].row()]

    def _update_buttons(self) -> None:
        row = self.selected()
        problem = self._storage_problem
        self.upload_button.setEnabled(row is not None and row.exists and problem is None)
        self.upload_button.setToolTip(problem or "Send this checkpoint to R2/S3 now (retries a failed upload)")
        self.download_button.setEnabled(row is not None and bool(row.r2_url) and problem is None)
        self.download_button.setToolTip(problem or ("Fetch this checkpoint from R2/S3 into the local cache"
                                                    if row is not None and row.r2_url else
                                                    "Only checkpoints uploaded to R2/S3 can be downloaded"))
        self.reveal_button.setEnabled(row is not None and Path(row.path).parent.is_dir())
        self.export_button.setEnabled(row is not None and row.exists)

    # -- actions ----------------------------------------------------------------------------------
    def upload_selected(self) -> None:
        row = self.selected()
        if row is None or self.job_id is None:
            return
        store, settings, job_id, kind = self.state.store, self.state.settings, self.job_id, row.kind

        def work(_st: Any) -> str:
            try:
                checkpoint_service.upload_checkpoints(store, job_id, kinds=(kind,), settings=settings)
            except ServiceError as exc:
                return f"Not uploaded: {exc}"
            return f"Uploaded {kind}.pt."

        self.upload_button.setEnabled(False)
        self.banner.show_message(f"Uploading {kind}.pt…", level="info")
        self.tasks.start("action", work, title="Upload checkpoint", on_result=self._after_action,
                         on_error=self._on_error)

    def download_selected(self) -> None:
        row = self.selected()
        if row is None or not row.r2_url:
            return
        store, settings, job_id, kind, url = self.state.store, self.state.settings, row.job_id, row.kind, row.r2_url

        def work(_st: Any) -> str:
            path = checkpoint_service.download_checkpoint(store, job_id, kind, settings=settings)
            return f"Downloaded to {path}"

        self.banner.show_message(f"Downloading {url}…", level="info")
        self.tasks.start("action", work, title="Download checkpoint", on_result=self._after_action,
                         on_error=self._on_error)

    def reveal_selected(self) -> None:
        row = self.selected()
        if row is not None:
            reveal_in_file_manager(Path(row.path))

    def export_selected(self) -> None:
        from app.widgets.export_dialog import ExportDialog

        row = self.selected()
        if row is not None:
            self.export_dialog = ExportDialog(self.state.store, row.job_id, row.kind, self)
            self.export_dialog.open()

    def _after_action(self, message: str) -> None:
        level = "info" if message.startswith(("Uploaded", "Downloaded")) else "warning"
        self.banner.show_message(message, level=level)
        self.refresh()
        self.changed.emit()

    def _on_error(self, info: ErrorInfo) -> None:
        self.banner.show_message(f"{info.title} failed: {info.message}", detail=info.detail)
        self._update_buttons()


def reveal_in_file_manager(path: Path) -> bool:
    """Open the folder holding ``path`` (or ``path`` itself when it is a folder)."""
    folder = path if path.is_dir() else path.parent
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

