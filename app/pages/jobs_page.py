"""Jobs page: the project's jobs with live charts, log, checkpoints, results and run comparison.

The table reads the store in a worker thread, never all at once on the GUI thread: the first page of
rows in the view's order (sorted by SQLite), then, once that page is painted (alone) and the job's
tabs and charts after it (one a step, ``_hold_paint``), the rest in chunks that are inserted one per
event-loop turn; afterwards, every second while visible and soon after
job events, only what changed (new jobs, unfinished jobs, jobs whose uploads moved;
``job_service.job_changes``). The status counts come from SQL. Metric events of the selected job
go straight into the charts' buffers; selecting a job reloads its whole history from SQLite, so
curves survive an app restart. Charts need pyqtgraph (about 1 s to import): they are built when the
page is first shown, never during start-up.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QCoreApplication,
    QEvent,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QPoint,
    Qt,
    QTimer,
    QUrl,
    Signal,
)
from PySide6.QtGui import QAction, QDesktopServices, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QStyle,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.look import HINT_STYLE, STATUS_COLOURS, format_bytes, icon
from app.models.app_state import AppState
from app.models.chart_data import ChartData, fetch_updates, fetch_window, load_chart_data
from app.models.jobs_table import COL_PROGRESS, JobIdRole, JobRow, JobsTableModel, ProgressDelegate
from app.widgets.announce import announce
from app.widgets.checkpoints_panel import CheckpointsPanel
from app.widgets.common import Banner, EmptyState
from app.widgets.log_pane import LogPane
from app.widgets.results_view import ResultsView
from app.widgets.testset_strip import TestSetStrip
from app.workers import ErrorInfo, TaskSlots, TaskState, run_task
from core import gc_policy
from core.events import TEST_METRICS_KIND
from core.jobs import ACTIVE_STATES, RESUMABLE_STATES
from core.rundir import RunDir
from core.services import ServiceError
from core.services import jobs as job_service
from core.services.jobs import DeletePreview, JobChanges, JobDetail, JobOrder, ListMarks

if TYPE_CHECKING:
    from app.widgets.compare_view import CompareView
    from app.widgets.live_charts import LiveCharts

REFRESH_MS = 1000
FIRST_PAGE_ROWS = 100  # read first: a screenful and more, in a few milliseconds
CHUNK_ROWS = 500  # then the rest, this many rows a read and an event-loop turn
RESIZE_PRECISION_ROWS = 100
FIRST_PAINT_WAIT_S = 1.0  # the rest of the rows is read once the first page is painted, or after this
# Between two chunks the reader lets go of the GIL a moment: read back to back, they left the GUI
# thread's paints and timers waiting for it (longest stall with 10,000 jobs, median of 8 at load
# 1.7-2.9: 37.5 ms back to back, 31 ms with this pause; 100 ms more to read them all).
CHUNK_YIELD_S = 0.005
FOLLOW_MS = 500  # a running job's new points are read from the store this often (whoever runs it)
EVENT_REFRESH_DELAY_MS = 150  # several events in a burst cause one refresh
# After the list's first paint, the job's tabs and then each chart paint this far apart: a chart's
# first paint measures its tick labels and lays the plot out again (a second paint, a turn or two
# later); a zero timer let two or three of them and those second paints share one turn.
PAINT_STEP_MS = 25
STOPPABLE = ACTIVE_STATES
RESUMABLE = RESUMABLE_STATES


def _read_all_rows(state: TaskState, store: Any, project_id: int | None, order: JobOrder,
                   first_shown: threading.Event) -> ListMarks:
    """Every job in ``order``, handed over page by page (``state.partial``): the first page is small.

    The rest waits until the first page is on screen, and the job's tabs and charts after it
    (``first_shown``): read meanwhile, it held the GIL while the GUI thread painted, and each of the
    paint's Python calls waited for it (up to the 5 ms switch interval): 2-3× the GUI thread's own
    time to the first rows (bench_long_runs.py).
    """
    marks = job_service.list_marks(store, project_id)
    offset, size = 0, FIRST_PAGE_ROWS
    while True:
        state.check()
        rows = job_service.list_jobs_page(store, project_id, order, offset, size, marks.max_id)
        state.partial((marks, rows))
        if len(rows) < size:
            return marks
        if offset == 0:
            _wait_until_shown(state, first_shown)
        else:
            time.sleep(CHUNK_YIELD_S)
        offset, size = offset + len(rows), CHUNK_ROWS


def _wait_until_shown(state: TaskState, shown: threading.Event) -> None:
    """Wait for ``shown`` (at most ``FIRST_PAINT_WAIT_S``), in short slices: a cancelled read stops."""
    deadline = time.monotonic() + FIRST_PAINT_WAIT_S
    while not shown.wait(0.02) and time.monotonic() < deadline:
        state.check()


class JobsPage(QWidget):
    clone_requested = Signal(object)  # JobConfig: the main window shows it in the Train page

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.model = JobsTableModel(self)
        self.charts: LiveCharts | None = None
        self.compare: CompareView | None = None
        self.detail: JobDetail | None = None
        self.tasks = TaskSlots(self)  # "rows", "detail", "charts": a new read replaces the old one
        self._loading_job: int | None = None
        self._pending_metrics: list[tuple[int, dict[str, Any]]] = []
        self._mlflow: Any = None  # the `mlflow ui` process this page started
        self._marks: ListMarks | None = None  # set once every row is read: later reads bring changes only
        self._chunks: deque[list[JobRow]] = deque()  # read, not yet in the model
        # Set once a read's first page is painted, and the job's part after it: the rest of the rows follows.
        self._first_shown = threading.Event()
        self._painting_for: threading.Event | None = None  # the read whose first page the held widgets follow
        self._shown_counts: dict[str, int] | None = None
        self._wanted: set[int] = set()  # selected before a reload, selected again by id as rows arrive
        self._wanted_current: int | None = None
        self._current_status: str | None = None  # the selected job's status when a reload began
        self._insert_timer = QTimer(self)
        self._insert_timer.setInterval(0)
        self._insert_timer.timeout.connect(self._insert_chunk)
        # The job's part paints after the list, one widget per event-loop turn (``_hold_paint``).
        self._paint_queue: deque[QWidget] = deque()
        self._paint_timer = QTimer(self)
        self._paint_timer.setInterval(PAINT_STEP_MS)
        self._paint_timer.timeout.connect(self._paint_next)
        self.model.sort_requested.connect(lambda _order: self.reload())
        self._build()
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        self._soon = QTimer(self)
        self._soon.setSingleShot(True)
        self._soon.setInterval(EVENT_REFRESH_DELAY_MS)
        self._soon.timeout.connect(self.refresh)
        # Live events reach only the process that runs a job: the charts of a running job follow the
        # store too, so a job run by the CLI, another window or (later) a cluster grows here as well.
        self._follow = QTimer(self)
        self._follow.setInterval(FOLLOW_MS)
        self._follow.timeout.connect(self._follow_running_job)
        state.project_change.connect(lambda _pid: self.reload())
        state.jobs_change.connect(self.refresh)
        state.job_event.connect(self._on_job_event)
        instance = QCoreApplication.instance()
        if instance is not None:
            instance.aboutToQuit.connect(self.stop_mlflow)  # the `mlflow ui` this page started

    # -- layout -----------------------------------------------------------------------------------
    def _build(self) -> None:
        self.empty = EmptyState(icon("jobs"), "Training jobs", "No jobs yet — configure one from a dataset.")
        self.empty.add_button("Configure a job", icon("train"), lambda: self.state.page_request.emit("train"),
                              primary=True)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setItemDelegateForColumn(COL_PROGRESS, ProgressDelegate(self.table))
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)  # one line per job: a long text is elided ("…"), never wrapped
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSortIndicator(-1, Qt.SortOrder.DescendingOrder)  # newest first until a column is clicked
        self.table.setSortingEnabled(True)
        header.sortIndicatorChanged.connect(lambda *_: self._show_sort_indicator())
        # Columns are fitted to the first page once per read (``_fit_columns``), not on every insert:
        # ResizeToContents measured again at each chunk of a 10,000-job sweep and held the window.
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setResizeContentsPrecision(RESIZE_PRECISION_ROWS)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(COL_PROGRESS, QHeaderView.ResizeMode.Fixed)
        self.table.setColumnWidth(COL_PROGRESS, 120)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._on_selection())
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self._on_selection())

        self._build_actions()
        bar = QHBoxLayout()
        for action in (self.cancel_action, self.resume_action, self.extend_action, self.clone_action,
                       self.delete_action, self.folder_action, self.mlflow_action):
            button = QPushButton(action.icon(), action.text())
            button.setToolTip(action.toolTip())
            button.clicked.connect(action.trigger)
            action.changed.connect(lambda b=button, a=action: (b.setEnabled(a.isEnabled()), b.setToolTip(a.toolTip())))
            bar.addWidget(button)
        bar.addStretch(1)
        self.summary = QLabel()
        bar.addWidget(self.summary)
        self.banner = Banner()

        self.charts_holder = QWidget()
        holder_layout = QVBoxLayout(self.charts_holder)
        holder_layout.setContentsMargins(0, 0, 0, 0)
        self.charts_placeholder = QLabel("Loading charts…")
        self.charts_placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        holder_layout.addWidget(self.charts_placeholder, 1)
        export_row = QHBoxLayout()
        self.chart_note = QLabel("")
        self.chart_note.setStyleSheet(HINT_STYLE)
        export_row.addWidget(self.chart_note, 1)
        self.export_png_button = QPushButton("Export PNG…")
        self.export_png_button.clicked.connect(self.export_png_dialog)
        self.export_csv_button = QPushButton("Export CSV…")
        self.export_csv_button.clicked.connect(self.export_csv_dialog)
        export_row.addWidget(self.export_png_button)
        export_row.addWidget(self.export_csv_button)
        holder_layout.addLayout(export_row)

        self.log = LogPane()
        self.checkpoints = CheckpointsPanel(self.state)
        self.checkpoints.changed.connect(self.refresh)
        self.results = ResultsView(self.state)
        self.test_set = TestSetStrip(self.state)  # the best checkpoint on the test split, when the job has one
        self.compare_holder = QWidget()
        QVBoxLayout(self.compare_holder).setContentsMargins(0, 0, 0, 0)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.charts_holder, "Charts")
        self.tabs.addTab(self.log, "Log")
        self.tabs.addTab(self.checkpoints, "Checkpoints")
        self.tabs.addTab(self.results, "Results")
        self.tabs.addTab(self.compare_holder, "Compare")
        self.tabs.currentChanged.connect(lambda _i: self._on_tab())

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        job_part = QWidget()  # the selected job: its test-set numbers (when it has them) above its tabs
        job_layout = QVBoxLayout(job_part)
        job_layout.setContentsMargins(0, 0, 0, 0)
        job_layout.addWidget(self.test_set)
        job_layout.addWidget(self.tabs, 1)
        splitter.addWidget(job_part)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([200, 560])
        content = QWidget()
        content_layout = QVBoxLayout(content)
        content_layout.setContentsMargins(0, 0, 0, 0)
        content_layout.addLayout(bar)
        content_layout.addWidget(self.banner)
        content_layout.addWidget(splitter, 1)
        self.content = content
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(content)
        layout = QVBoxLayout(self)
        layout.addWidget(self.stack)
        self._update_actions()

    def _build_actions(self) -> None:
        def make(text: str, slot: Any, tip: str, icon_name: str = "", shortcut: str | None = None) -> QAction:
            action = QAction(icon(icon_name) if icon_name else QIcon(), text, self)
            action.setToolTip(tip)
            action.triggered.connect(slot)
            if shortcut:
                action.setShortcut(QKeySequence(shortcut))
                action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.addAction(action)
            return action

        self.cancel_action = make("Cancel", self.cancel_selected, "Stop the job (it keeps its last checkpoint)")
        self.resume_action = make("Resume", self.resume_selected, "Continue from the last checkpoint (last.pt)",
                                  "start")
        self.extend_action = make("Extend…", self.extend_selected, "Train this job for more epochs from last.pt")
        self.clone_action = make("Clone…", self.clone_selected, "Open this job's settings in the configurator",
                                 "train")
        self.delete_action = make("Delete…", self.delete_selected, "Delete the job, its metrics and its run folder",
                                  "delete", "Delete")
        self.folder_action = make("Open folder", self.open_folder, "Open the run folder in the file manager", "open")
        self.mlflow_action = make("MLflow", self.open_mlflow, "Open this run in the MLflow UI", "cloud")

    # -- visibility and refresh -------------------------------------------------------------------
    def showEvent(self, event: Any) -> None:  # refresh only while visible
        super().showEvent(event)
        if not self._first_shown.is_set():
            self._hold_paint([self.tabs, *self._chart_panels()])
        self.refresh()
        self.timer.start()
        self._follow.start()
        if self.charts is None:
            from app.widgets.split_panel import preload_chart_library

            preload_chart_library(self._build_charts)

    def hideEvent(self, event: Any) -> None:
        super().hideEvent(event)
        self.timer.stop()
        self._follow.stop()

    def _build_charts(self) -> None:
        if self.charts is not None:
            return
        from app.widgets.compare_view import CompareView
        from app.widgets.live_charts import LiveCharts

        self.charts = LiveCharts()
        store = self.state.store
        self.charts.set_fetcher(lambda job_id, names, x_from, x_to, width: fetch_window(
            store, job_id, names, x_from, x_to, width))
        layout = self.charts_holder.layout()
        assert isinstance(layout, QVBoxLayout)
        self.charts_placeholder.hide()
        self._hold_paint(self._chart_panels())  # built while the page shows: one chart a turn too
        layout.insertWidget(0, self.charts, 1)
        self.compare = CompareView(self.state)
        compare_layout = self.compare_holder.layout()
        assert compare_layout is not None
        compare_layout.addWidget(self.compare)
        # pyqtgraph (imported after start-up's freeze) and these charts live for the session: unfrozen,
        # every full collection (one comes with a 10,000-job read) scanned their ~43,000 objects,
        # holding the GIL ~20 ms (85-280 ms without the start-up freeze).
        gc_policy.freeze_long_lived()
        self._load_charts(self.current_job_id())
        self._on_tab()
        if self._first_shown.is_set():
            self._paint_timer.start()

    def _chart_panels(self) -> list[QWidget]:
        return list(self.charts.panels.values()) if self.charts is not None else []

    def _hold_paint(self, widgets: list[QWidget]) -> None:
        """Hold back the paint of ``widgets`` until the list's first paint, then let them paint one per
        event-loop turn (``_paint_next``): the job's tabs, then each chart (3-8 ms of pyqtgraph each).
        Painted in one turn with the list, they held the window 75-85 ms (bench_long_runs.py).
        Each is held explicitly, so the tabs' paint leaves the charts inside them held."""
        for widget in widgets:
            widget.setUpdatesEnabled(False)
        held = dict.fromkeys([*self._paint_queue, *widgets])  # each once
        # The tabs first: the charts are inside them and cannot paint before they do.
        self._paint_queue = deque(sorted(held, key=lambda widget: widget is not self.tabs))

    def _paint_next(self) -> None:
        if self._paint_queue:
            self._paint_queue.popleft().setUpdatesEnabled(True)
            return
        self._paint_timer.stop()
        if self._painting_for is not None:
            self._painting_for.set()  # everything painted: the rest of the rows is read now
            self._painting_for = None

    def refresh(self) -> None:
        """Bring the table up to date: every row the first time, then only what changed."""
        if self.tasks.running("rows") or self._chunks:
            return  # the timer fires every second: a read in progress finishes first
        if self._marks is None:
            self.reload()
            return
        store, project_id, marks = self.state.store, self.state.project_id, self._marks
        total = self.model.rowCount()
        self.tasks.start("rows", lambda _st: job_service.job_changes(
            store, project_id, after_id=marks.max_id, after_revision=marks.revision,
            checkpoint_mark=marks.checkpoint_mark, known_total=total), title="Refresh jobs", on_result=self._on_changes)

    def reload(self) -> None:
        """Read every row again (another project or order): the first page at once, the rest in chunks."""
        self._wanted |= set(self.selected_ids())  # selected again by id as their rows arrive
        self._wanted_current = self.current_job_id() or self._wanted_current
        row = self.current_row()
        if row is not None:
            self._current_status = row.status  # a change found by the reload updates the job's tabs
        self._marks = None
        self._chunks.clear()
        self.model.clear()
        self._first_shown.set()  # a read still waiting for its first page to show goes on (and is dropped)
        store, project_id, order = self.state.store, self.state.project_id, self.model.order
        first_shown = self._first_shown = threading.Event()
        self.tasks.start("rows", lambda st: _read_all_rows(st, store, project_id, order, first_shown),
                         title="Read jobs", on_partial=self._on_rows_read, on_result=self._on_all_read)

    def _on_rows_read(self, part: tuple[ListMarks, list[JobRow]]) -> None:
        marks, rows = part
        self._show_counts(marks.counts)
        self._chunks.append(rows)
        if not self._insert_timer.isActive():
            self._insert_chunk()  # the first page goes in at once
            self._insert_timer.start()

    def _on_all_read(self, marks: ListMarks) -> None:
        self._marks = marks
        if not self._insert_timer.isActive():
            self._insert_chunk()

    def _insert_chunk(self) -> None:
        """One chunk per event-loop turn: 10,000 rows never hold the window for one long turn."""
        if self._chunks:
            first_page = self.model.rowCount() == 0
            self.model.append_rows(self._chunks.popleft())
            if first_page:
                self._fit_columns()
                self._wait_for_first_paint()
            self._reselect()
        elif self._marks is not None:  # everything read and shown
            self._insert_timer.stop()
            if not self.model.rowCount():  # no list to paint first (an empty project): the tabs now
                self._painting_for = self._first_shown
                self._paint_timer.start()
            self._wanted, self._wanted_current = set(), None
            self._update_actions()
        else:
            self._insert_timer.stop()  # the next chunk is still being read: it restarts the timer
        if self._first_shown.is_set():
            self._select_newest_if_none()
        # The actions are not updated per chunk (20 of them with 10,000 jobs): appended rows change
        # no selection, and a selection change updates them itself (``_on_selection``).

    def _wait_for_first_paint(self) -> None:
        """Once the first page is painted (``eventFilter``), the rest is read and the newest job is
        selected: its charts, log and details load then, not in worker threads that would compete
        with the first paint for the GIL. A hidden page has nothing to wait for."""
        if self.table.viewport().isVisible():
            self.table.viewport().installEventFilter(self)
        else:
            self._first_page_shown()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and watched is self.table.viewport() and self.model.rowCount():
            watched.removeEventFilter(self)
            QTimer.singleShot(0, self._first_page_shown)  # once this paint is done
        return False

    def _first_page_shown(self) -> None:
        self._painting_for = self._first_shown
        self._paint_timer.start()
        self._select_newest_if_none()

    def _select_newest_if_none(self) -> None:
        waiting = bool(self._wanted) or self._wanted_current is not None  # a reload selects again by id
        if self.model.rows and not waiting and self.current_job_id() is None:
            self.select_job(self.model.rows[0].id)

    def _fit_columns(self) -> None:
        """Column widths from the rows shown first (``RESIZE_PRECISION_ROWS`` of them), as
        ``resizeColumnToContents`` would set them but from font metrics (see ``text_widths``)."""
        header, style = self.table.horizontalHeader(), self.table.style()
        # The delegate's text margins and the grid line, around the widest text.
        padding = 2 * (style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, self.table) + 1) + 2
        widths = self.model.text_widths(self.table.fontMetrics(), RESIZE_PRECISION_ROWS)
        for column, width in enumerate(widths):
            if column not in (0, COL_PROGRESS):  # Name stretches; Progress is a fixed-width bar
                self.table.setColumnWidth(column, max(header.sectionSizeHint(column), width + padding))

    def _reselect(self) -> None:
        """Select again, by id, what was selected before a reload, as its rows arrive."""
        found = sorted(job_id for job_id in self._wanted if self.model.row_for(job_id) is not None)
        current = self._wanted_current
        current_found = current is not None and self.model.row_for(current) is not None
        if found or current_found:
            self._restore_selection(found, current if current_found else None)
            self._wanted -= set(found)
            if current_found:
                self._wanted_current = None
                row = self.model.job(current)  # type: ignore[arg-type]
                if row is not None and self._current_status not in (None, row.status):
                    self._on_selected_status_change(self._current_status, row.status)
                self._current_status = None

    def _on_changes(self, changes: JobChanges) -> None:
        updated = self.model.apply_changes(changes.rows)
        if changes.ids is not None:
            self.model.remove_missing(changes.ids)
        assert self._marks is not None
        self._marks = ListMarks(changes.max_id, changes.checkpoint_mark, changes.counts, changes.revision)
        self._show_counts(changes.counts)
        if self.model.status_counts() != changes.counts:
            self.reload()  # a change the cursors cannot see (a finished job edited elsewhere): read again
            return
        current = self.current_job_id()
        if current is None and self.model.rows:
            self.select_job(self.model.rows[0].id)
        for before, after in updated:
            if after.id == current and before.status != after.status:
                self._on_selected_status_change(before.status, after.status)
        self._update_actions()

    def _show_counts(self, counts: dict[str, int]) -> None:
        if counts == self._shown_counts:
            return  # every chunk of a read and most refreshes bring the same counts
        self._shown_counts = dict(counts)
        parts = [f"<span style='color:{STATUS_COLOURS.get(s, '#8e9399')}'>{n} {s}</span>"
                 for s, n in sorted(counts.items(), key=lambda item: item[0])]
        self.summary.setText(" · ".join(parts))
        self.stack.setCurrentWidget(self.content if sum(counts.values()) else self.empty)

    def _show_sort_indicator(self) -> None:
        """Computed columns are not sorted: the indicator goes back to the order the rows are in."""
        header = self.table.horizontalHeader()
        column, order = self.model.sort_column()
        if (header.sortIndicatorSection(), header.sortIndicatorOrder()) != (column, order) and column != -1:
            header.blockSignals(True)
            header.setSortIndicator(column, order)
            header.blockSignals(False)

    def _restore_selection(self, selected: list[int], current: int | None) -> None:
        selection = self.table.selectionModel()
        selection.blockSignals(True)
        for job_id in selected:
            position = self.model.row_for(job_id)
            if position is not None:
                selection.select(self.model.index(position, 0), QItemSelectionModel.SelectionFlag.Select
                                 | QItemSelectionModel.SelectionFlag.Rows)
        if current is not None and (position := self.model.row_for(current)) is not None:
            selection.setCurrentIndex(self.model.index(position, 0), QItemSelectionModel.SelectionFlag.NoUpdate)
        selection.blockSignals(False)
        self._on_selection()

    # -- selection --------------------------------------------------------------------------------
    def select_job(self, job_id: int) -> bool:
        position = self.model.row_for(job_id)
        if position is None:
            return False
        self.table.selectionModel().setCurrentIndex(
            self.model.index(position, 0),
            QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
        return True

    def current_job_id(self) -> int | None:
        index = self.table.selectionModel().currentIndex()
        if not index.isValid():
            rows = self.table.selectionModel().selectedRows()
            if not rows:
                return None
            index = rows[0]
        job_id = index.data(JobIdRole)
        return int(job_id) if job_id is not None else None

    def current_row(self) -> JobRow | None:
        job_id = self.current_job_id()
        return None if job_id is None else self.model.job(job_id)

    def selected_ids(self) -> list[int]:
        ids = [int(index.data(JobIdRole)) for index in self.table.selectionModel().selectedRows()]
        return ids or ([self.current_job_id()] if self.current_job_id() is not None else [])  # type: ignore[list-item]

    def _on_selection(self) -> None:
        job_id = self.current_job_id()
        self._update_actions()
        if self.compare is not None:
            self.compare.set_jobs([(i, row.name) for i in self.selected_ids() if (row := self.model.job(i))])
        if self.detail is not None and self.detail.id == job_id:
            return
        self.detail = None
        self.checkpoints.set_job(job_id)
        self.results.set_job(job_id)
        self.test_set.set_job(job_id)
        row = self.model.job(job_id) if job_id is not None else None
        self.log.set_log(RunDir(Path(row.output_dir)).log if row and row.output_dir else None)
        self.log.set_error(None, None)
        self._load_charts(job_id)
        self._load_detail(job_id)

    def _load_detail(self, job_id: int | None) -> None:
        if job_id is None:
            self.tasks.cancel("detail")
            return
        store = self.state.store
        self.tasks.start("detail", lambda _st: job_service.job_detail(store, job_id), title="Read job",
                         on_result=self._on_detail, on_error=lambda _info: None)

    def _on_detail(self, detail: JobDetail) -> None:
        self.detail = detail
        self.log.set_error(detail.error_message if detail.status == "failed" else None, detail.error_traceback)
        self.log.set_log(RunDir(Path(detail.output_dir)).log)
        self._update_actions()

    def _on_selected_status_change(self, before: str, after: str) -> None:
        job_id = self.current_job_id()
        self.detail = None
        self._load_detail(job_id)
        self.checkpoints.refresh()
        self.results.refresh()
        self.test_set.refresh()
        # A resumed run re-does its last epoch (the store dropped those rows); a finished one has its
        # last points in the store: either way the charts are read again.
        self._load_charts(job_id)

    def _load_charts(self, job_id: int | None) -> None:
        if self.charts is None:
            return
        if job_id is None:
            self.tasks.cancel("charts")
            self.charts.set_data(ChartData())
            self.chart_note.setText("")
            return
        self._loading_job = job_id
        self._pending_metrics = []
        self.tasks.cancel("follow")
        store, width = self.state.store, self.charts.plot_width()
        self.chart_note.setText("Reading metrics…")
        self.tasks.start("charts", lambda _st: load_chart_data(store, job_id, width), title="Read metrics",
                         on_result=self._on_chart_data)

    def _follow_running_job(self) -> None:
        """Read the selected running job's records written since the charts last looked."""
        charts, row = self.charts, self.current_row()
        if (charts is None or row is None or row.status != "running" or charts.job_id != row.id
                or charts.data.cursor is None or self._loading_job is not None or self.tasks.running("follow")):
            return
        store, job_id, cursor = self.state.store, row.id, charts.data.cursor
        self.tasks.start("follow", lambda _st: fetch_updates(store, job_id, cursor), title="Follow job",
                         on_result=lambda found: self._on_updates(job_id, found), on_error=lambda _info: None)

    def _on_updates(self, job_id: int, found: Any) -> None:
        charts = self.charts
        if charts is None or charts.job_id != job_id or self._loading_job is not None:
            return
        first = charts.data.point_count() == 0
        for record in found.records:  # those live events already brought are skipped by their x
            if record.kind == TEST_METRICS_KIND:  # not a curve: the Test set strip shows it
                self.test_set.show_values(record.epoch, record.values)
                continue
            charts.add_metrics(record.kind, record.epoch, record.step, record.values)
        charts.data.cursor = found.cursor
        if first and found.records:
            self._update_chart_note()

    def _on_chart_data(self, data: ChartData) -> None:
        if self.charts is None:
            return
        for _job_id, event in self._pending_metrics:  # live events that arrived while reading
            data.add(event.get("kind", "epoch"), event.get("epoch"), event.get("step"), event.get("values") or {})
        self._pending_metrics = []
        self._loading_job = None
        self.charts.set_data(data)
        self._update_chart_note()

    def _update_chart_note(self) -> None:
        if self.charts is None:
            return
        count = self.charts.data.point_count()
        self.chart_note.setText("No metrics yet: curves appear with the first training steps." if not count else
                                "Hover a chart for values; click a legend entry to hide a series; drag to pan, "
                                "wheel to zoom.")

    # -- events -----------------------------------------------------------------------------------
    def _on_job_event(self, job_id: int, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "metrics" and self.test_set.on_event(job_id, event):
            return
        if kind == "metrics" and self.charts is not None:
            if self._loading_job == job_id:
                self._pending_metrics.append((job_id, event))
            elif self.charts.job_id == job_id:
                first = self.charts.data.point_count() == 0
                self.charts.add_metrics(event.get("kind", "epoch"), event.get("epoch"), event.get("step"),
                                        event.get("values") or {})
                if first:
                    self._update_chart_note()
            return
        if kind in ("progress", "status", "checkpoint", "artifact", "job_end", "hello", "done", "error"):
            if not self._soon.isActive():
                self._soon.start()
        if job_id == self.current_job_id():
            if kind == "checkpoint":
                self.checkpoints.refresh()
            elif kind == "artifact":
                self.results.refresh()
            elif kind == "job_end":
                self.log.poll()
                self.detail = None
                self._load_detail(job_id)
                self.checkpoints.refresh()
                self.results.refresh()
                self.test_set.refresh()
                if self.compare is not None:
                    self.compare.reload()
        if kind == "job_end":
            row = self.model.job(job_id)
            name = row.name if row else f"Job {job_id}"
            announce(self, f"{name}: {event.get('status', 'finished')}")  # announced once, no dialog

    def _on_tab(self) -> None:
        if self.tabs.currentWidget() is self.compare_holder and self.compare is not None:
            self.compare.reload()

    # -- actions ----------------------------------------------------------------------------------
    def _update_actions(self) -> None:
        row = self.current_row()
        status = row.status if row else ""
        ids = self.selected_ids()
        rows = [r for i in ids if (r := self.model.job(i)) is not None]
        self.cancel_action.setEnabled(status in STOPPABLE)
        self.resume_action.setEnabled(status in RESUMABLE)
        self.extend_action.setEnabled(row is not None and status not in STOPPABLE)
        self.clone_action.setEnabled(row is not None)
        self.delete_action.setEnabled(bool(rows) and all(r.status not in STOPPABLE for r in rows))
        self.delete_action.setToolTip("Delete the job, its metrics and its run folder" if self.delete_action.isEnabled()
                                      else "Cancel running or queued jobs before deleting them")
        self.folder_action.setEnabled(row is not None and bool(row.output_dir) and Path(row.output_dir).is_dir())
        problem = self._mlflow_problem()
        self.mlflow_action.setEnabled(row is not None and problem is None)
        self.mlflow_action.setToolTip(problem or "Open this run in the MLflow UI (started on this computer)")
        has_data = self.charts is not None and self.charts.data.point_count() > 0
        self.export_png_button.setEnabled(has_data)
        self.export_csv_button.setEnabled(has_data)

    def _mlflow_problem(self) -> str | None:
        if self.detail is not None and not self.detail.mlflow_run_id:
            return "This run was not tracked in MLflow (tracking is off in Settings, or it has not started)"
        try:
            import core.tracking.cli  # noqa: F401
        except Exception as exc:
            return f"MLflow tracking is not available in this build: {exc}"
        return None

    def _run_action(self, title: str, fn: Any, done_message: str) -> None:
        def finished(result: Any) -> None:
            self.banner.clear()
            self.state.jobs_change.emit()  # the queue wakes up and the table refreshes
            self.refresh()
            announce(self, result if isinstance(result, str) and result else done_message)

        run_task(fn, title=title, on_result=finished, on_error=self._on_action_error, owner=self)

    def _on_action_error(self, info: ErrorInfo) -> None:
        self.banner.show_message(f"{info.title}: {info.message}", detail=info.detail)

    def cancel_selected(self) -> None:
        row = self.current_row()
        if row is None or row.status not in STOPPABLE:
            return
        store = self.state.store
        def work(_st: Any) -> str:
            outcome = job_service.cancel_job(store, row.id)
            return f"{row.name}: cancelled" if outcome == "cancelled" else ""

        self._run_action("Cancel job", work, f"{row.name}: stopping (the last checkpoint is kept)")

    def resume_selected(self) -> None:
        self._requeue(0)

    def extend_selected(self, epochs: int | None = None) -> None:
        row = self.current_row()
        if row is None:
            return
        if epochs is None:
            epochs, ok = QInputDialog.getInt(self, "Extend training", f"Train {row.name} for how many more epochs?",
                                             5, 1, 10_000)
            if not ok:
                return
        self._requeue(epochs)

    def _requeue(self, extra_epochs: int) -> None:
        row = self.current_row()
        if row is None:
            return
        store = self.state.store
        what = f"{extra_epochs} more epochs" if extra_epochs else "resume"
        def work(_st: Any) -> str:
            job_service.resume_job(store, row.id, extra_epochs=extra_epochs)
            return ""

        self._run_action("Resume job", work, f"{row.name}: queued ({what}, from last.pt)")

    def clone_selected(self) -> None:
        """Open the job's config in the configurator: from the detail already read, else read it first."""
        row = self.current_row()
        if row is None:
            return
        if self.detail is not None and self.detail.id == row.id:
            self._clone_from(self.detail)
            return
        store, job_id = self.state.store, row.id
        run_task(lambda _st: job_service.job_detail(store, job_id), title="Clone job", on_result=self._clone_from,
                 on_error=self._on_action_error, owner=self)

    def _clone_from(self, detail: JobDetail) -> None:
        try:
            config = detail.config()
        except ServiceError as exc:
            self.banner.show_message(str(exc))
            return
        self.clone_requested.emit(config)

    def delete_selected(self, confirm: bool = True) -> None:
        """Delete the selected jobs; with ``confirm`` the run folders are measured first (in a worker)
        and the user confirms what goes."""
        rows = [r for i in self.selected_ids() if (r := self.model.job(i)) is not None]
        if not rows or any(r.status in STOPPABLE for r in rows):
            return
        ids = [r.id for r in rows]
        if not confirm:
            self._delete(ids)
            return
        store = self.state.store
        run_task(lambda _st: job_service.delete_preview(store, ids), title="Measure run folders",
                 on_result=lambda previews: self._delete(ids) if self._confirm_delete(previews) else None,
                 on_error=self._on_action_error, owner=self)

    def _delete(self, ids: list[int]) -> None:
        store = self.state.store

        def work(_st: Any) -> str:
            problems = job_service.delete_jobs(store, ids)
            return "Not everything was deleted: " + "; ".join(problems) if problems else ""

        self.detail = None
        self._run_action("Delete jobs", work, f"Deleted {len(ids)} job{'s' if len(ids) != 1 else ''}")

    def _confirm_delete(self, previews: list[DeletePreview]) -> bool:
        total = sum(p.size_bytes for p in previews)
        lines = [f"• #{p.job_id} {p.name}: its metrics and "
                 + (f"{p.run_dir} ({format_bytes(p.size_bytes)}: checkpoints, log, plots)" if p.run_dir
                    else "no run folder") for p in previews]
        count = len(previews)
        box = QMessageBox(QMessageBox.Icon.Warning, "Delete jobs",
                          f"Delete {count} job{'s' if count != 1 else ''} and {format_bytes(total)} of files? "
                          "This cannot be undone.", parent=self)
        box.setInformativeText("\n".join(lines[:20]) + ("\n…" if len(lines) > 20 else ""))
        delete = box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is delete

    def open_folder(self) -> None:
        row = self.current_row()
        if row is not None and row.output_dir:
            QDesktopServices.openUrl(QUrl.fromLocalFile(row.output_dir))

    def open_mlflow(self) -> None:
        detail = self.detail
        if detail is None or not detail.mlflow_run_id:
            return
        run_id = detail.mlflow_run_id
        existing = self._mlflow

        def work(_st: Any) -> tuple[Any, str]:
            from core.tracking.cli import start_mlflow_ui, wait_until_listening

            if existing is not None and existing[0].poll() is None:
                return existing
            process, url = start_mlflow_ui()
            port = int(url.rsplit(":", 1)[1])
            if not wait_until_listening(port, process):
                process.kill()
                raise RuntimeError("the MLflow UI did not start within a minute")
            return process, url

        def opened(result: tuple[Any, str]) -> None:
            self._mlflow = result
            QDesktopServices.openUrl(QUrl(f"{result[1]}/#/runs/{run_id}"))

        announce(self, "Starting the MLflow UI…")
        run_task(work, title="Open MLflow UI", on_result=opened, on_error=self._on_action_error, owner=self)

    def stop_mlflow(self) -> None:
        if self._mlflow is not None and self._mlflow[0].poll() is None:
            self._mlflow[0].terminate()
        self._mlflow = None

    def _context_menu(self, pos: QPoint) -> None:
        index = self.table.indexAt(pos)
        if isinstance(index, QModelIndex) and index.isValid() and not self.table.selectionModel().isRowSelected(
                index.row(), QModelIndex()):
            self.select_job(int(index.data(JobIdRole)))
        menu = QMenu(self)
        for action in (self.cancel_action, self.resume_action, self.extend_action, self.clone_action):
            menu.addAction(action)
        menu.addSeparator()
        for action in (self.folder_action, self.mlflow_action):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.delete_action)
        menu.popup(self.table.viewport().mapToGlobal(pos))

    # -- export -----------------------------------------------------------------------------------
    def export_png_dialog(self) -> None:
        row = self.current_row()
        if self.charts is None or row is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export charts", f"job_{row.id}_charts.png", "PNG image (*.png)")
        if path and not self.charts.export_png(path):
            self.banner.show_message(f"Could not write {path}.")

    def export_csv_dialog(self) -> None:
        if self.tasks.running("csv"):  # the button reads "Cancel export" meanwhile
            self.tasks.cancel("csv")
            self._csv_export_ended()
            return
        row = self.current_row()
        if self.charts is None or row is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export metrics", f"job_{row.id}_metrics.csv", "CSV (*.csv)")
        if path:
            self.export_csv(row.id, path)

    def export_csv(self, job_id: int, path: str) -> None:
        """Every point at full resolution, streamed from the store in a worker (progress; Cancel stops it)."""
        from core.services import metrics

        store = self.state.store

        def work(state: Any) -> int:
            return metrics.export_csv(store, job_id, path, progress=lambda done, total: state.progress(
                done, total, "Exporting metrics"), cancelled=lambda: state.cancelled)

        self.export_csv_button.setText("Cancel export")
        self.tasks.start(
            "csv", work, title="Export metrics",
            on_progress=lambda done, total, _m: self.chart_note.setText(
                f"Exporting metrics… {100 * done // max(total, 1)} %"),
            on_result=lambda count: self._csv_export_ended(f"Wrote {count} values to {path}"),
            on_error=lambda info: self._csv_export_ended(error=f"Could not write {path}: {info.message}"))

    def _csv_export_ended(self, message: str = "", error: str = "") -> None:
        self.export_csv_button.setText("Export CSV…")
        self._update_chart_note()
        if message:
            announce(self, message)
        if error:
            self.banner.show_message(error)
