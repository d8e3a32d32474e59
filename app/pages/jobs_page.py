"""Jobs page (minimal; part 2 adds live charts, logs and actions): the project's jobs, refreshed every second."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QHeaderView,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.look import STATUS_COLOURS, icon
from app.models.app_state import AppState
from app.widgets.common import EmptyState
from app.workers import TaskHandle, run_task

COLUMNS = ["ID", "Name", "Model", "Status"]


class JobsPage(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.empty = EmptyState(icon("jobs"), "Training jobs", "No jobs yet — configure one from a dataset.")
        self.empty.add_button("Configure a job", icon("train"), lambda: state.page_request.emit("train"), primary=True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.table)
        layout = QVBoxLayout(self)
        layout.addWidget(self.stack)
        self.rows: list[tuple[int, str, str, str]] = []
        self._task: TaskHandle | None = None
        self.timer = QTimer(self)
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self.refresh)
        state.project_change.connect(lambda _pid: self.refresh())
        state.jobs_change.connect(self.refresh)

    def showEvent(self, event: object) -> None:  # refresh only while visible
        self.refresh()
        self.timer.start()

    def hideEvent(self, event: object) -> None:
        self.timer.stop()

    def refresh(self) -> None:
        if self._task is not None and not self._task.done:
            return
        from core.jobs.store import list_jobs

        store, project_id = self.state.store, self.state.project_id
        self._task = run_task(
            lambda _st: [(j.id, j.name or "", j.model_name, j.status) for j in list_jobs(store, project_id)],
            title="Refresh jobs", on_result=self._show,
        )

    def _show(self, rows: list[tuple[int, str, str, str]]) -> None:
        if rows == self.rows and self.table.rowCount() == len(rows):
            return
        self.rows = rows
        self.table.setRowCount(len(rows))
        for r, (job_id, name, model, status) in enumerate(rows):
            values = (str(job_id), name, model, status)
            for c, value in enumerate(values):
                item = QTableWidgetItem(value)
                if c == 3:
                    item.setForeground(QColor(STATUS_COLOURS.get(status, "#8e9399")))
                if c == 0:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        self.stack.setCurrentWidget(self.table if rows else self.empty)
