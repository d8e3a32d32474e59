"""The jobs table: a Qt model over job rows read from the store in a worker thread.

Rows are plain :class:`JobRow` snapshots (no SQLAlchemy objects cross threads). ``set_rows`` keeps
the view's selection and scroll position: unchanged ids only emit ``dataChanged`` for the cells that
changed; a different id list resets the model (the page restores the selection by id).
"""

from __future__ import annotations

from dataclasses import dataclass
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


def format_metric(name: str | None, value: float | None) -> str:
    if not name or value is None:
        return ""
    short = name.split("/", 1)[-1]
    # Ratios (accuracy, mAP, IoU, precision, recall) read as percentages; losses stay as numbers.
    if "loss" not in short and 0.0 <= value <= 1.0:
        return f"{short} {value * 100:.1f} %"
    return f"{short} {value:.4g}"


@dataclass(frozen=True)
class JobRow:
    id: int
    name: str
    framework: str
    model: str
    task: str
    status: str
    epoch: int | None
    epochs: int | None
    step: int | None
    steps: int | None
    best_name: str | None
    best_value: float | None
    started_at: datetime | None
    completed_at: datetime | None
    output_dir: str
    error_message: str | None
    sync: str = ""

    @property
    def fraction(self) -> float | None:
        """Share of the run done, from the last progress event (None before the first one)."""
        if self.status == "completed":
            return 1.0
        if not self.epochs or not self.epoch:
            return None
        within = (self.step or 0) / self.steps if self.steps else 0.0
        within = min(max(within, 0.0), 1.0)
        return min(1.0, ((self.epoch - 1) + within) / self.epochs)

    def eta_seconds(self, now: datetime) -> float | None:
        fraction = self.fraction
        if self.status != "running" or self.started_at is None or not fraction or fraction <= 0.0:
            return None
        elapsed = (now - self.started_at).total_seconds()
        return elapsed / fraction * (1.0 - fraction)

    def duration_seconds(self, now: datetime) -> float | None:
        if self.started_at is None:
            return None
        end = self.completed_at or (now if self.status == "running" else None)
        if end is None:
            return None
        return (end - self.started_at).total_seconds()


def sync_summary(states: list[str]) -> str:
    """One word for a job's checkpoints: synced, uploading, failed, local (or empty without any)."""
    if not states:
        return ""
    if all(s == "synced" for s in states):
        return "synced"
    if any(s == "failed" for s in states):
        return "upload failed"
    if any(s in ("pending", "uploading", "queued") for s in states):
        return "uploading"
    return "local"


def read_rows(store: Any, project_id: int) -> list[JobRow]:
    """Job rows of a project with their checkpoint sync state (runs in a worker thread)."""
    from sqlalchemy import select

    from core.db.models import Checkpoint
    from core.jobs.store import list_jobs

    jobs = list_jobs(store, project_id)
    states: dict[int, list[str]] = {}
    if jobs:
        with store.read() as session:
            for job_id, state in session.execute(
                select(Checkpoint.job_id, Checkpoint.sync_state).where(Checkpoint.job_id.in_([j.id for j in jobs]))
            ):
                states.setdefault(job_id, []).append(state)
    return [
        JobRow(
            id=job.id, name=job.name or f"Job {job.id}", framework=job.framework, model=job.model_name,
            task=job.task_type, status=job.status, epoch=job.current_epoch, epochs=job.epochs,
            step=job.current_step, steps=job.steps_per_epoch, best_name=job.best_metric_name,
            best_value=job.best_metric_value, started_at=job.started_at, completed_at=job.completed_at,
            output_dir=job.output_dir or "", error_message=job.error_message, sync=sync_summary(states.get(job.id, [])),
        )
        for job in jobs
    ]


class JobsTableModel(QAbstractTableModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[JobRow] = []
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
        return next((i for i, row in enumerate(self.rows) if row.id == job_id), None)

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
