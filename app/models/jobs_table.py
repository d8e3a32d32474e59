"""The jobs table: a Qt model over job rows that the jobs service reads page by page in a worker thread.

Rows are plain frozen :class:`JobRow` snapshots (no SQLAlchemy objects cross threads). A sweep leaves
10,000 jobs in the DB, so the model never takes them in one go: :meth:`append_rows` adds a page at the
end (the page reads the first page first, the rest in chunks), :meth:`apply_changes` updates only the
rows the service says changed (``dataChanged`` for those rows; new jobs are inserted at the top) and
:meth:`remove_missing` drops deleted ones. A reset (:meth:`clear`) happens only when the order or
the project changes; ``full_reloads`` counts them. Sorting is done by SQLite (``sort`` asks the page to
read again in the new order): a row whose sort value changes keeps its place until the next sort, so
rows never jump under the pointer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QRect, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QPainter
from PySide6.QtWidgets import (
    QApplication,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QWidget,
)

from app.look import STATUS_COLOURS
from core.jobs import ALL_STATES
from core.services.jobs import JobOrder, JobSummary, format_metric

ProgressRole = Qt.ItemDataRole.UserRole + 1
JobIdRole = Qt.ItemDataRole.UserRole + 2

COLUMNS = ("Name", "Model", "Status", "Epoch", "Progress", "ETA", "Best metric", "Started", "Duration", "Sync")
COL_STATUS = COLUMNS.index("Status")
COL_PROGRESS = COLUMNS.index("Progress")
# Texts a row may take later (a queued job completes, a first epoch brings a best metric): the columns
# are fitted once, to the first page, so they leave room for these too rather than clip them then.
WIDEST_TEXTS: dict[int, tuple[str, ...]] = {COL_STATUS: ALL_STATES, COLUMNS.index("Epoch"): ("100/100",),
                                            COLUMNS.index("Best metric"): ("accuracy 100.0 %",)}
# Columns SQLite sorts by (``core.services.jobs.SORT_KEYS``); -1 is the default order, newest first.
SORT_COLUMNS = {-1: "id", 0: "name", 1: "model", 2: "status", 3: "epoch", 6: "best", 7: "started"}


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
    sort_requested = Signal(object)  # JobOrder: the rows must be read again in this order

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[JobRow] = []
        self._positions: dict[int, int] = {}  # job id -> row: lookups stay O(1) with 10,000 jobs
        self._counts: Counter[str] = Counter()  # rows per status, kept as rows come and go
        self.now = datetime.now()
        self.order = JobOrder()
        self.full_reloads = 0  # model resets (tests and the benchmark: changes never reset)

    # -- Qt model ---------------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        key = SORT_COLUMNS.get(column)
        if key is None:
            return  # computed columns (progress, ETA, duration, sync): the page puts the indicator back
        wanted = JobOrder(key, descending=column == -1 or order == Qt.SortOrder.DescendingOrder)
        if wanted != self.order:
            self.order = wanted
            self.sort_requested.emit(wanted)

    def sort_column(self) -> tuple[int, Qt.SortOrder]:
        """The header's indicator for the current order."""
        column = next(c for c, key in SORT_COLUMNS.items() if key == self.order.key)
        return column, Qt.SortOrder.DescendingOrder if self.order.descending else Qt.SortOrder.AscendingOrder

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
    def clear(self) -> None:
        """Forget every row (another order or project follows, read page by page)."""
        self.beginResetModel()
        self.rows, self._positions, self._counts = [], {}, Counter()
        self.endResetModel()
        self.full_reloads += 1

    def append_rows(self, rows: Iterable[JobRow]) -> int:
        """Add a page of rows at the end (ids already shown are skipped); returns how many were added."""
        new = [row for row in rows if row.id not in self._positions]
        if not new:
            return 0
        first = len(self.rows)
        self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
        self.rows.extend(new)
        for position, row in enumerate(new, first):
            self._positions[row.id] = position
            self._counts[row.status] += 1
        self.endInsertRows()
        return len(new)

    def apply_changes(self, rows: Iterable[JobRow], now: datetime | None = None) -> list[tuple[JobRow, JobRow]]:
        """Update the rows given (``dataChanged`` per changed row; running rows always, for ETA and
        duration); unknown ids are new jobs, inserted at the top. Returns (before, after) of updated rows."""
        self.now = now or datetime.now()
        updated: list[tuple[JobRow, JobRow]] = []
        new: list[JobRow] = []
        last = len(COLUMNS) - 1
        for row in rows:
            position = self._positions.get(row.id)
            if position is None:
                new.append(row)
                continue
            before = self.rows[position]
            self.rows[position] = row
            changed = before != row  # compared once: a sweep's thousands of queued jobs come every second
            if changed and before.status != row.status:
                self._counts[before.status] -= 1
                self._counts[row.status] += 1
            if changed or row.status == "running":
                self.dataChanged.emit(self.index(position, 0), self.index(position, last))
            if changed:
                updated.append((before, row))
        if new:
            self._insert_at_top(sorted(new, key=lambda r: r.id, reverse=True))
        return updated

    def _insert_at_top(self, rows: list[JobRow]) -> None:
        self.beginInsertRows(QModelIndex(), 0, len(rows) - 1)
        self.rows[:0] = rows
        self._positions = {row.id: position for position, row in enumerate(self.rows)}
        self._counts.update(row.status for row in rows)
        self.endInsertRows()

    def remove_missing(self, ids: frozenset[int]) -> int:
        """Drop the rows whose job is no longer in ``ids`` (deleted); returns how many went."""
        gone = sorted((position for job_id, position in self._positions.items() if job_id not in ids), reverse=True)
        for position in gone:
            self.beginRemoveRows(QModelIndex(), position, position)
            self._counts[self.rows.pop(position).status] -= 1
            self.endRemoveRows()
        if gone:
            self._positions = {row.id: position for position, row in enumerate(self.rows)}
        return len(gone)

    def row_for(self, job_id: int) -> int | None:
        return self._positions.get(job_id)

    def job(self, job_id: int) -> JobRow | None:
        position = self.row_for(job_id)
        return None if position is None else self.rows[position]

    def status_counts(self) -> dict[str, int]:
        return {status: count for status, count in self._counts.items() if count > 0}

    def text_widths(self, metrics: QFontMetrics, rows: int) -> list[int]:
        """Each column's widest text among the first ``rows`` rows, in pixels (no padding).

        Measured with font metrics, once per distinct text: the view's ``resizeColumnToContents``
        asks the delegate for a size hint per cell (about ten ``data()`` calls each), 40-65 ms of the
        GUI thread for the first page of a 10,000-job sweep (bench/bench_long_runs.py).
        """
        shown = self.rows[:rows]
        texts = [{self.text(row, column) for row in shown} | set(WIDEST_TEXTS.get(column, ()))
                 for column in range(len(COLUMNS))]
        return [max((metrics.horizontalAdvance(text) for text in column), default=0) for column in texts]


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
