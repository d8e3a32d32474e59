"""Datasets page: add a dataset (folder, .zip, drop, r2:// URL), browse it, check it, split it.

All dataset I/O (indexing, health check, registration, split preview, thumbnails, full images) runs
in workers; the page only swaps widgets when results arrive. A failed add shows a banner in place and
writes nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QImageReader
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.look import (
    ERROR_COLOUR,
    HINT_STYLE,
    WARNING_COLOUR,
    class_colour,
    format_bytes,
    format_count,
    icon,
    plural,
)
from app.models.app_state import AppState, LoadedDataset
from app.models.image_list import ImageListModel
from app.widgets.common import Banner, BusyRow, EmptyState
from app.widgets.image_viewer import ImageViewer
from app.widgets.split_panel import SplitPanel
from app.workers import ErrorInfo, TaskHandle, TaskSlots, TaskState, run_task
from core import gc_policy
from core.config import DATASET_FORMATS
from core.dataset_store import DatasetInfo
from core.services import Store
from core.services import datasets as datasets_service
from core.services.projects import ProjectOverview, project_overview
from core.settings import Settings

FORMAT_LABELS = {"dice": "DICE / labelme", "yolo": "YOLO", "imagefolder": "Image folders", "coco": "COCO"}


def _user_message(info: ErrorInfo, path: str) -> tuple[str, str]:
    """A sentence for the banner and the detail behind "Details…"."""
    if any(kind in info.detail for kind in ("ServiceError", "DatasetError", "ConfigError")):
        return f"This is not a dataset the app can open: {info.message}", ""
    return f"Could not open {path}: {info.message}", info.detail


def _loaded(opened: datasets_service.OpenedDataset) -> LoadedDataset:
    assert opened.info is not None, "a registered dataset has its row"
    return LoadedDataset(info=opened.info, index=opened.index, findings=opened.findings)


def open_and_register(state: TaskState, store: Store, project_id: int, path: str, fmt: str, *,
                      settings: Settings | None = None,
                      download_progress: Callable[[int, int], None] | None = None) -> tuple[LoadedDataset, ProjectOverview]:
    """Worker body: (download,) index, health-check, then (only if all went well) register the dataset.

    Returns the loaded dataset and the fresh project overview for the sidebar."""
    notices: list[str] = []
    with gc_policy.paused():
        opened = datasets_service.register_dataset(
            store, project_id, path, fmt, settings=settings, check=state.check, download_progress=download_progress,
            progress=lambda text: state.progress(0, 0, text), notice=notices.append)
    loaded = _loaded(opened)
    loaded.notices = notices
    return loaded, project_overview(store)


def reopen(state: TaskState, info: DatasetInfo, fmt: str | None = None) -> LoadedDataset:
    with gc_policy.paused():
        opened = datasets_service.reopen_dataset(info, fmt, check=state.check,
                                                 progress=lambda text: state.progress(0, 0, text))
    return _loaded(opened)


class ImageBrowser(QWidget):
    """Filter bar + virtualised thumbnail grid, and the large viewer for one image."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = ImageListModel()
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search by file name")
        self.search.setClearButtonEnabled(True)
        self.class_filter = QComboBox()
        self.split_filter = QComboBox()
        self.finding_filter = QComboBox()
        self.count_label = QLabel()
        bar = QHBoxLayout()
        bar.addWidget(self.search, 2)
        bar.addWidget(self.class_filter, 1)
        bar.addWidget(self.split_filter, 1)
        bar.addWidget(self.finding_filter, 1)
        bar.addWidget(self.count_label)

        self.grid = QListView()
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setUniformItemSizes(True)
        self.grid.setLayoutMode(QListView.LayoutMode.Batched)
        self.grid.setBatchSize(500)
        self.grid.setIconSize(QSize(96, 96))
        self.grid.setGridSize(QSize(116, 128))
        self.grid.setSpacing(4)
        self.grid.setWordWrap(False)
        self.grid.setSelectionMode(QListView.SelectionMode.SingleSelection)
        self.grid.setModel(self.model)
        self.grid.verticalScrollBar().valueChanged.connect(lambda _value: self.model.loader.hold())
        self.grid.activated.connect(self._on_activated)
        self.grid.clicked.connect(self._on_activated)

        self.viewer = ImageViewer()
        self.viewer_title = QLabel()
        self.viewer_labels = QLabel()
        self.viewer_labels.setTextFormat(Qt.TextFormat.RichText)
        back = QPushButton("← Back to all images")
        back.clicked.connect(self.show_grid)
        previous = QPushButton("Previous")
        previous.clicked.connect(self.show_previous)
        following = QPushButton("Next")
        following.clicked.connect(self.show_next)
        hint = QLabel("Arrows: previous/next · +/−/0: zoom · drag: pan · Esc: back")
        hint.setStyleSheet(HINT_STYLE)
        viewer_bar = QHBoxLayout()
        viewer_bar.addWidget(back)
        viewer_bar.addWidget(self.viewer_title, 1)
        viewer_bar.addWidget(self.viewer_labels)
        viewer_bar.addWidget(previous)
        viewer_bar.addWidget(following)
        viewer_page = QWidget()
        viewer_layout = QVBoxLayout(viewer_page)
        viewer_layout.setContentsMargins(0, 0, 0, 0)
        viewer_layout.addLayout(viewer_bar)
        viewer_layout.addWidget(self.viewer, 1)
        viewer_layout.addWidget(hint)
        self.viewer.next_requested.connect(self.show_next)
        self.viewer.previous_requested.connect(self.show_previous)
        self.viewer.close_requested.connect(self.show_grid)

        self.stack = QStackedWidget()
        grid_page = QWidget()
        grid_layout = QVBoxLayout(grid_page)
        grid_layout.setContentsMargins(0, 0, 0, 0)
        grid_layout.addLayout(bar)
        grid_layout.addWidget(self.grid, 1)
        self.stack.addWidget(grid_page)
        self.stack.addWidget(viewer_page)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)

        self.search.textChanged.connect(lambda text: self._filter(text=text))
        self.class_filter.currentIndexChanged.connect(lambda _: self._filter(cls=self.class_filter.currentData()))
        self.split_filter.currentIndexChanged.connect(lambda _: self._filter(split=self.split_filter.currentData()))
        self.finding_filter.currentIndexChanged.connect(
            lambda _: self._filter(finding=self.finding_filter.currentData())
        )
        self._dataset: LoadedDataset | None = None
        self.current_row: int | None = None
        self.current_record: Any = None
        self.tasks = TaskSlots(self)  # "image": the newest opened image wins

    def set_dataset(self, dataset: LoadedDataset | None) -> None:
        self.tasks.cancel("image")
        self._dataset = dataset
        self.show_grid()
        for combo in (self.class_filter, self.split_filter, self.finding_filter):
            combo.blockSignals(True)
            combo.clear()
        self.search.blockSignals(True)
        self.search.clear()
        self.search.blockSignals(False)
        if dataset is None:
            self.model.set_records([])
        else:
            self.model.loader.hold(0.08)  # the grid's first paint of a new dataset goes first
            self.model.set_records(dataset.index.images, dataset.findings, dataset.path_rows)
            self.class_filter.addItem("All classes", "")
            for i, name in enumerate(dataset.index.class_names):
                self.class_filter.addItem(name, name)
                self.class_filter.setItemData(i + 1, class_colour(i), Qt.ItemDataRole.DecorationRole)
            self.split_filter.addItem("All splits", "")
            self.split_filter.addItem("Train", "train")
            self.split_filter.addItem("Validation", "val")
            if self.model.has_test_split:
                self.split_filter.addItem("Test", "test")
            self.finding_filter.addItem("All images", "")
            codes = self.model.finding_codes()
            if codes:
                self.finding_filter.addItem("With any finding", "*")
                for code in codes:
                    self.finding_filter.addItem(f"Finding: {code.replace('_', ' ')}", code)
        for combo in (self.class_filter, self.split_filter, self.finding_filter):
            combo.blockSignals(False)
        self._update_count()

    def _filter(self, **kwargs: Any) -> None:
        self.model.set_filter(**kwargs)
        self._update_count()

    def _update_count(self) -> None:
        total = len(self._dataset.index.images) if self._dataset else 0
        shown = self.model.rowCount()
        self.count_label.setText(
            plural(total, "image") if shown == total else f"{format_count(shown)} of {plural(total, 'image')}"
        )

    # -- viewer -----------------------------------------------------------------------------------
    def _on_activated(self, index: QModelIndex) -> None:
        self.open_row(index.row())

    def open_path(self, path: str) -> bool:
        """Open an image by absolute or relative path (health-table rows); clears filters if needed."""
        row = self.model.row_for_path(path)
        if row is None:
            self.set_dataset(self._dataset)
            row = self.model.row_for_path(path)
        if row is None:
            return False
        self.open_row(row)
        return True

    def open_row(self, row: int) -> None:
        if not 0 <= row < self.model.rowCount() or self._dataset is None:
            return
        self.current_row = row
        record = self.model.record(row)
        self.current_record = record
        self.grid.setCurrentIndex(self.model.index(row, 0))
        self.stack.setCurrentIndex(1)
        self.viewer.setFocus()
        self.viewer_title.setText(f"<b>{record.rel}</b>  ({row + 1} of {self.model.rowCount():,})")
        names = list(self._dataset.index.class_names)
        chips = []
        for label in record.labels:  # image-level labels (classification)
            colour = class_colour(names.index(label) if label in names else len(names)).name()
            chips.append(f"<span style='background:{colour}; color:black;'>&nbsp;{label}&nbsp;</span>")
        self.viewer_labels.setText(" ".join(chips))
        path = str(record.path)

        def load(_state: TaskState) -> QImage:
            reader = QImageReader(path)
            reader.setAutoTransform(True)
            image = reader.read()
            if image.isNull():
                raise ValueError(f"{path}: cannot be decoded ({reader.errorString()})")
            return image

        self.tasks.start("image", load, title="Open image", on_result=functools.partial(self._on_image, record),
                         on_error=self._on_image_error)

    def _on_image(self, record: Any, image: QImage) -> None:
        assert self._dataset is not None, "set_dataset cancels the image of the dataset shown before"
        self.viewer.show_image(image, record.shapes, list(self._dataset.index.class_names))

    def _on_image_error(self, info: ErrorInfo) -> None:
        self.viewer.clear_image()
        self.viewer_title.setText(f"<span style='color:{ERROR_COLOUR}'>{info.message}</span>")

    def show_next(self) -> None:
        if self.current_row is not None and self.current_row + 1 < self.model.rowCount():
            self.open_row(self.current_row + 1)

    def show_previous(self) -> None:
        if self.current_row is not None and self.current_row > 0:
            self.open_row(self.current_row - 1)

    def show_grid(self) -> None:
        self.stack.setCurrentIndex(0)
        self.grid.setFocus()

    def image_loading(self) -> bool:
        return self.tasks.running("image")


class HealthTable(QTableWidget):
    open_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 4, parent)
        self.setHorizontalHeaderLabels(["Severity", "Problem", "File", "What to do"])
        self.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().hide()
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.setWordWrap(False)
        self.cellDoubleClicked.connect(self._on_double_click)
        self.cellActivated.connect(self._on_double_click)

    def set_findings(self, findings: list[Any]) -> None:
        order = {"error": 0, "warning": 1, "info": 2}
        rows = sorted(findings, key=lambda f: (order.get(f.severity, 3), f.code, f.path))
        self.setRowCount(len(rows))
        colours = {"error": ERROR_COLOUR, "warning": WARNING_COLOUR}
        for row, finding in enumerate(rows):
            severity = QTableWidgetItem(finding.severity)
            if finding.severity in colours:
                severity.setForeground(QColor(colours[finding.severity]))
            self.setItem(row, 0, severity)
            self.setItem(row, 1, QTableWidgetItem(finding.code.replace("_", " ")))
            self.setItem(row, 2, QTableWidgetItem(str(finding.path)))
            message = QTableWidgetItem(finding.message)
            message.setToolTip(finding.message)
            self.setItem(row, 3, message)
        self.resizeColumnsToContents()
        self.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)

    def _on_double_click(self, row: int, _column: int) -> None:
        item = self.item(row, 2)
        if item is not None:
            self.open_requested.emit(item.text())


class DatasetsPage(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.banner = Banner()
        self.busy = BusyRow()
        self.busy.cancel_clicked.connect(self.cancel_add)

        self.empty = EmptyState(
            icon("dataset"),
            "Add a dataset to start",
            "Drop a dataset folder or .zip here, or choose one. DICE/labelme, YOLO, COCO and "
            "class-folder datasets are recognised automatically.",
        )
        self.empty.add_button("Open folder…", icon("open"), self.choose_folder, primary=True)
        self.empty.add_button("Open .zip…", icon("zip"), self.choose_zip)
        self.empty.add_button("From R2 URL…", icon("cloud"), self.choose_r2_url)
        self.try_button = self.empty.add_button("Try it with a sample", icon("start"), self.try_sample)
        self.try_button.setToolTip("Add a small sample dataset (three shapes), train a tiny model on it in under a "
                                   "minute, then try the model on one of its images")
        self.sample_run: Any = None

        # Header of an opened dataset.
        self.title = QLabel()
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.title.setFont(font)
        self.facts = QLabel()
        self.facts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.format_combo = QComboBox()
        self.format_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.format_combo.setToolTip("Detected automatically; choose another format if the detection is wrong")
        self.format_combo.activated.connect(self._on_format_override)
        add_more = QPushButton(icon("add"), "Add dataset…")
        add_more.clicked.connect(self.choose_folder)
        train = QPushButton(icon("train"), "Train a model →")
        train.clicked.connect(lambda: self.state.page_request.emit("train"))
        header = QHBoxLayout()
        titles = QVBoxLayout()
        titles.addWidget(self.title)
        titles.addWidget(self.facts)
        header.addLayout(titles, 1)
        header.addWidget(QLabel("Format:"))
        header.addWidget(self.format_combo)
        header.addWidget(add_more)
        header.addWidget(train)

        self.browser = ImageBrowser()
        self.split_panel = SplitPanel()
        self.split_panel.split_chosen.connect(self._on_split_chosen)
        self.split_panel.split_result.connect(self.browser.model.set_split)
        # Filtering the grid by split needs the preview split of a dataset without its own.
        self.browser.split_filter.currentIndexChanged.connect(
            lambda _i: self.split_panel.ensure_split() if self.browser.split_filter.currentData() else None)
        self.health = HealthTable()
        self.health.open_requested.connect(self._open_from_health)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.browser, icon("dataset"), "Images")
        self.tabs.addTab(self.split_panel, icon("jobs"), "Split && classes")
        health_page = QWidget()
        health_layout = QVBoxLayout(health_page)
        health_layout.setContentsMargins(0, 4, 0, 0)
        hint = QLabel("Images with errors are skipped in training. Double-click a row to open the image.")
        hint.setStyleSheet(HINT_STYLE)
        health_layout.addWidget(hint)
        health_layout.addWidget(self.health, 1)
        self.health_page = health_page
        self.tabs.addTab(health_page, "Health check")

        self.opened = QWidget()
        opened_layout = QVBoxLayout(self.opened)
        opened_layout.setContentsMargins(0, 0, 0, 0)
        opened_layout.addLayout(header)
        opened_layout.addWidget(self.tabs, 1)

        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.opened)
        layout = QVBoxLayout(self)
        layout.addWidget(self.banner)
        layout.addWidget(self.busy)
        layout.addWidget(self.stack, 1)

        self._task: TaskHandle | None = None
        self.state.dataset_change.connect(self._on_dataset_change)
        self.state.project_change.connect(self._on_project_change)

    # -- adding -------------------------------------------------------------------------------------
    def try_sample(self) -> None:
        """The first-run "Try it" flow (``app.first_run``)."""
        from app.first_run import SampleRun

        self.banner.clear()
        self.try_button.setEnabled(False)
        inference_page = self.window().pages["inference"]  # type: ignore[attr-defined]
        self.sample_run = SampleRun(self.state, inference_page, owner=self)
        self.sample_run.failed.connect(lambda text: self.banner.show_message(text))
        self.sample_run.failed.connect(lambda _text: self.try_button.setEnabled(True))
        self.sample_run.start()

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open dataset folder")
        if path:
            self.add_dataset_path(path)

    def choose_zip(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open dataset .zip", "", "Zip archives (*.zip)")
        if path:
            self.add_dataset_path(path)

    def choose_r2_url(self) -> None:
        url, ok = QInputDialog.getText(self, "Dataset from R2", "r2:// URL of the dataset (.zip or folder prefix):",
                                       text="r2://")
        if ok and url.strip() not in ("", "r2://"):
            self.add_dataset_path(url.strip())

    def is_busy(self) -> bool:
        return self._task is not None and not self._task.done

    def add_dataset_path(self, path: str, fmt: str = "auto") -> None:
        """The one entry point for folder, .zip, drop and URL: index in a worker, then register."""
        if self.is_busy():
            self.banner.show_message("Another dataset is still opening; wait for it or cancel it first.",
                                     level="warning")
            return
        self.banner.clear()
        if path.startswith("r2://"):
            self._download(path)
            return
        store, project_id = self.state.store, self.state.project_id
        self.busy.start(f"Opening {Path(path).name}…")
        self._task = run_task(
            lambda st: open_and_register(st, store, project_id, path, fmt),
            owner=self, title="Open dataset",
            on_result=self._on_added,
            on_error=lambda info: self._on_add_failed(info, path),
            on_progress=self.busy.progress,
            on_finished=self.busy.stop,
        )

    def cancel_add(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self.busy.label.setText("Cancelling…")

    def _on_added(self, answer: tuple[LoadedDataset, ProjectOverview]) -> None:
        dataset, overview = answer
        self.state.set_overview(overview)
        self.state.set_dataset(dataset)
        if dataset.notices:
            self.banner.show_message(" ".join(dataset.notices), level="warning")

    def _on_add_failed(self, info: ErrorInfo, path: str) -> None:
        text, detail = _user_message(info, path)
        self.banner.show_message(text, detail=detail)

    def _download(self, url: str) -> None:
        """r2:// datasets: check the storage settings and keys (a file or keyring read) in a worker first."""
        settings = self.state.settings
        self.busy.start(f"Checking the storage settings for {url}…")
        self._task = run_task(lambda _st: datasets_service.r2_download_problem(settings, url), owner=self,
                              title="Check storage keys", on_result=lambda problem: self._after_r2_check(url, problem),
                              on_error=lambda info: self._r2_check_failed(info, url), on_cancelled=self.busy.stop)

    def _r2_check_failed(self, info: ErrorInfo, url: str) -> None:
        self.busy.stop()
        self._on_add_failed(info, url)

    def _after_r2_check(self, url: str, problem: str | None) -> None:
        if problem is not None:
            self.busy.stop()
            self.banner.show_message(problem, level="warning")
        else:
            self._start_download(url)

    def _start_download(self, url: str) -> None:
        """Download with progress (cancellable) into the cache, then open as usual."""
        store, project_id, settings = self.state.store, self.state.project_id, self.state.settings

        def work(st: TaskState) -> tuple[LoadedDataset, ProjectOverview]:
            def report(done: int, total: int) -> None:
                st.check()  # Cancel: raises here, between chunks; the partial download is removed
                # In KiB: Qt's progress values are 32-bit ints and datasets reach 5 GB.
                st.progress(done // 1024, max(total // 1024, 1),
                            f"Downloading {url}: {format_bytes(done)} of {format_bytes(total)}")

            return open_and_register(st, store, project_id, url, "auto", settings=settings, download_progress=report)

        def cancelled() -> None:
            self.banner.show_message(f"Download of {url} cancelled; nothing was added.", level="info")

        self.busy.start(f"Downloading {url}…")
        self._task = run_task(work, owner=self, title="Download dataset", on_result=self._on_added,
                              on_error=lambda info: self._on_add_failed(info, url),
                              on_progress=self.busy.progress, on_cancelled=cancelled, on_finished=self.busy.stop)

    # -- showing ------------------------------------------------------------------------------------
    def open_registered(self, info: DatasetInfo) -> None:
        """Open a dataset listed in the sidebar (re-indexed in a worker)."""
        if self.is_busy():
            return
        self.banner.clear()
        self.busy.start(f"Opening {info.name}…")
        self._task = run_task(lambda st: reopen(st, info), owner=self, title="Open dataset",
                              on_result=self.state.set_dataset,
                              on_error=lambda i: self._on_add_failed(i, info.path),
                              on_progress=self.busy.progress, on_finished=self.busy.stop)

    def _on_project_change(self, _project_id: int) -> None:
        self.banner.clear()

    def _on_dataset_change(self, dataset: LoadedDataset | None) -> None:
        if dataset is None:
            self.stack.setCurrentWidget(self.empty)
            self.browser.set_dataset(None)
            self.split_panel.set_index(None, None)
            return
        index = dataset.index
        self.title.setText(dataset.info.name)
        errors = sum(1 for f in dataset.findings if f.severity == "error")
        warnings = sum(1 for f in dataset.findings if f.severity == "warning")
        task = index.task_hint or "unknown task"
        classes = len(index.class_names)
        facts = [plural(len(index.images), "image"), f"{format_count(classes)} class{'' if classes == 1 else 'es'}", task]
        problems = []
        if errors:
            problems.append(f"<span style='color:{ERROR_COLOUR}'>{plural(errors, 'error')}</span>")
        if warnings:
            problems.append(f"<span style='color:{WARNING_COLOUR}'>{plural(warnings, 'warning')}</span>")
        health = ", ".join(problems) + " (see Health check)" if problems else "no problems found"
        self.facts.setText(" · ".join(facts) + " · " + health)
        # The full path is long: shown on hover, never squeezing the header.
        where = str(index.source or index.root)
        self.title.setToolTip(where)
        self.facts.setToolTip(where)
        self.format_combo.blockSignals(True)
        self.format_combo.clear()
        for fmt in DATASET_FORMATS[1:]:
            label = FORMAT_LABELS.get(fmt, fmt)
            self.format_combo.addItem(f"{label} (detected)" if fmt == index.format else label, fmt)
        self.format_combo.setCurrentIndex(self.format_combo.findData(index.format))
        self.format_combo.blockSignals(False)
        self.browser.set_dataset(dataset)
        self.health.set_findings(dataset.findings)
        self.tabs.setTabText(2, f"Health check ({errors + warnings})" if errors + warnings else "Health check")
        self.split_panel.set_index(index, dataset.info.split_config, has_predefined_split=dataset.has_predefined_split)
        self.stack.setCurrentWidget(self.opened)
        gc_policy.freeze_long_lived()  # the index lives until another dataset is opened

    def _on_format_override(self, _row: int) -> None:
        dataset = self.state.dataset
        fmt = self.format_combo.currentData()
        if dataset is None or fmt == dataset.index.format or self.is_busy():
            return
        store = self.state.store
        info = dataset.info

        def work(st: TaskState) -> tuple[LoadedDataset, ProjectOverview]:
            with gc_policy.paused():
                opened = datasets_service.change_format(store, info.id, fmt, check=st.check)
            return _loaded(opened), project_overview(store)

        self.busy.start(f"Reading as {FORMAT_LABELS.get(fmt, fmt)}…")
        self._task = run_task(work, owner=self, title="Change format", on_result=self._on_added,
                              on_error=lambda i: self._on_format_failed(i, fmt),
                              on_finished=self.busy.stop)

    def _on_format_failed(self, info: ErrorInfo, fmt: str) -> None:
        dataset = self.state.dataset
        if dataset is not None:
            self.format_combo.setCurrentIndex(self.format_combo.findData(dataset.index.format))
        self.banner.show_message(f"The dataset cannot be read as {FORMAT_LABELS.get(fmt, fmt)}: {info.message}",
                                 level="warning")

    def _on_split_chosen(self, split: dict[str, Any]) -> None:
        dataset = self.state.dataset
        if dataset is None:
            return
        dataset.info.split_config = dict(split)
        store, dataset_id = self.state.store, dataset.info.id
        run_task(lambda _st: datasets_service.save_split(store, dataset_id, split), owner=self, title="Save split")

    def _open_from_health(self, path: str) -> None:
        self.tabs.setCurrentWidget(self.browser)
        if not self.browser.open_path(path):
            self.banner.show_message(f"{path} is not an image of this dataset (it is an annotation or folder).",
                                     level="info")

