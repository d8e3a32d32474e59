"""The jobs table: a Qt model over job rows that ``core.services.jobs.list_jobs`` reads in a worker thread.

Rows are plain frozen :class:`JobRow` snapshots (no SQLAlchemy objects cross threads). ``set_rows`` keeps
the view's selection and scroll position: unchanged ids only emit ``dataChanged`` for the cells that
changed; a different id list resets the model (the page restores the selection by id).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QRect, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import (
    QApplication,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QWidget,
)

from app.look import STATUS_COLOURS
from core.services.jobs import JobSummary, format_metric

ProgressRole = Qt.ItemDataRole.UserRole + 1
JobIdRole = Qt.ItemDataRole.UserRole + 2

COLUMNS = ("Name", "Model", "Status", "Epoch", "Progress", "ETA", "Best metric", "Started", "Duration", "Sync")
COL_STATUS = COLUMNS.index("Status")
COL_PROGRESS = COLUMNS.index("Progress")


def format_seconds(seconds: float) -> str:
    """3 min 20 s, 1 h 5 min, 12 s: for people (ui-guide)."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {(seconds % 3600) // 60} min"


# A row is the jobs service's plain snapshot; the table only formats it.
JobRow = JobSummary


class JobsTableModel(QAbstractTableModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[JobRow] = []
        self._positions: dict[int, int] = {}  # job id -> row: lookups stay O(1) with 10,000 jobs
        self.now = datetime.now()

    # -- Qt model ---------------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self.text(row, column)
        if role == JobIdRole:
            return row.id
        if role == ProgressRole and column == COL_PROGRESS:
            return row.fraction
        if role == Qt.ItemDataRole.ForegroundRole and column == COL_STATUS:
            return QColor(STATUS_COLOURS.get(row.status, "#8e9399"))
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == COL_STATUS and row.error_message:
                return row.error_message
            if column == 0:
                return f"Job {row.id}: {row.name}\n{row.output_dir}"
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (3, 5, 8):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def text(self, row: JobRow, column: int) -> str:
        if column == 0:
            return row.name
        if column == 1:
            return f"{row.framework} · {row.model}"
        if column == 2:
            return row.status
        if column == 3:
            return f"{row.epoch or 0}/{row.epochs}" if row.epochs else ""
        if column == 4:
            fraction = row.fraction
            return "" if fraction is None else f"{fraction * 100:.0f} %"
        if column == 5:
            eta = row.eta_seconds(self.now)
            return "" if eta is None else f"{format_seconds(eta)} left"
        if column == 6:
            return format_metric(row.best_name, row.best_value)
        if column == 7:
            return row.started_at.strftime("%Y-%m-%d %H:%M") if row.started_at else ""
        if column == 8:
            duration = row.duration_seconds(self.now)
            return "" if duration is None else format_seconds(duration)
        if column == 9:
            return row.sync
        return ""

    # -- updates ----------------------------------------------------------------------------------
    def set_rows(self, rows: list[JobRow], now: datetime | None = None) -> bool:
        """Show ``rows``; returns True when the id list changed (the model was reset)."""
        self.now = now or datetime.now()
        if [r.id for r in rows] != [r.id for r in self.rows]:
            self.beginResetModel()
            self.rows = list(rows)
            self._positions = {row.id: position for position, row in enumerate(self.rows)}
            self.endResetModel()
            return True
        old = self.rows
        self.rows = list(rows)
        last = len(COLUMNS) - 1
        for position, (before, after) in enumerate(zip(old, rows, strict=True)):
            # Running rows change every second (ETA, duration) even when their fields did not.
            if before != after or after.status == "running":
                self.dataChanged.emit(self.index(position, 0), self.index(position, last))
        return False

    def row_for(self, job_id: int) -> int | None:
        return self._positions.get(job_id)

    def job(self, job_id: int) -> JobRow | None:
        position = self.row_for(job_id)
        return None if position is None else self.rows[position]

    def status_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row.status] = counts.get(row.status, 0) + 1
        return counts


class ProgressDelegate(QStyledItemDelegate):
    """Draws the Progress column as a progress bar (text is the percentage)."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        fraction = index.data(ProgressRole)
        if fraction is None:
            super().paint(painter, option, index)
            return
        bar = QStyleOptionProgressBar()
        rect = QRect(option.rect)  # type: ignore[attr-defined]
        bar.rect = rect.adjusted(3, 4, -3, -4)  # type: ignore[attr-defined]
        bar.minimum = 0
        bar.maximum = 1000
        bar.progress = int(float(fraction) * 1000)
        bar.text = f"{float(fraction) * 100:.0f} %"
        bar.textVisible = True
        bar.state = option.state | QStyle.StateFlag.State_Horizontal  # type: ignore[attr-defined]
        widget = option.widget  # type: ignore[attr-defined]
        style = widget.style() if isinstance(widget, QWidget) else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter)
