"""The main window: project sidebar, a toolbar that reads like the pipeline, pages, status bar.

Built in two steps so the window paints fast: the chrome (menus, toolbar, status bar) needs only Qt;
the pages need the database (SQLAlchemy, pydantic, migrations: most of the start-up time), which
``app.main`` opens in a worker after the first paint, then builds the pages with
:meth:`MainWindow.attach_store`. Until then the centre says "Opening your projects…". Tests pass
the store to the constructor and get everything at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, QEvent, QObject, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QToolBar,
    QWidget,
)

from app.helper_process import HelperService
from app.look import APP_NAME, format_bytes, icon
from app.workers import ErrorInfo, TaskHandle, notifier, run_task

if TYPE_CHECKING:
    from app.models.app_state import AppState
    from app.pages.datasets_page import DatasetsPage
    from app.pages.jobs_page import JobsPage
    from app.pages.train_page import TrainPage
    from app.settings_dialog import SettingsDialog
    from app.widgets.weights_view import WeightsDialog
    from core.services import Store
    from core.services.projects import ProjectOverview
    from core.settings import Settings


class JobEvents(QObject):
    """Carries the job queue's events (from runner threads) to the GUI thread as a queued signal."""

    received = Signal(int, object)  # job id, event dict (core.events protocol)

    def emit_event(self, job_id: int, event: dict[str, Any]) -> None:
        self.received.emit(job_id, event)


PAGES = (("datasets", "Datasets", "dataset"), ("train", "Train", "train"), ("jobs", "Jobs", "jobs"),
         ("inference", "Inference", "inference"))


class MainWindow(QMainWindow):
    first_painted = Signal()
    ready = Signal()  # pages built: the store is attached

    def __init__(self, store: Store | None = None, *, queue: Any = None, helpers: HelperService | None = None,
                 settings: Settings | None = None) -> None:
        super().__init__()
        self.setWindowTitle(APP_NAME)
        self.setWindowIcon(icon("app"))
        self.setAcceptDrops(True)
        self.queue = queue
        self.helpers = helpers or HelperService(self)
        self.job_events = JobEvents(self)
        self.state: AppState | None = None
        self.pages: dict[str, QWidget] = {}
        self._loading = QLabel("Opening your projects…")
        self._loading.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._loading.installEventFilter(self)
        self._painted = False
        self.setCentralWidget(self._loading)
        self._build_actions()
        self._build_status_bar()
        self._restore_geometry()
        self._uploads_task: TaskHandle | None = None
        self._weights_dialog: WeightsDialog | None = None
        if store is not None:
            self.attach_store(store, settings)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._loading and event.type() == QEvent.Type.Paint and not self._painted:
            self._painted = True
            self.first_painted.emit()
        return False

    def show_start_error(self, text: str, detail: str = "") -> None:
        """Opening the data store failed: say so where the pages would be (the traceback on hover)."""
        self._loading.setText(text)
        self._loading.setWordWrap(True)
        self._loading.setToolTip(detail)

    def show_start_notice(self, title: str, text: str) -> None:
        """Something the user must know about the start (a damaged database was rebuilt): a message box
        over the window, not modal, so the pages stay usable; kept as ``start_notice``."""
        self.start_notice = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
        self.start_notice.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.start_notice.setModal(False)
        self.start_notice.show()

    def attach_store(self, store: Store, settings: Settings | None = None,
                     overview: ProjectOverview | None = None) -> None:
        """Build the pages on the opened store.

        ``app.main`` reads ``settings`` and ``overview`` in a worker while the window paints; a caller
        that passes only the store (tests, scripts) gets them read here, before the pages exist.
        """
        from app.models.app_state import AppState
        from app.pages.datasets_page import DatasetsPage
        from app.pages.inference_page import InferencePage
        from app.pages.jobs_page import JobsPage
        from app.pages.train_page import TrainPage
        from app.widgets.project_sidebar import ProjectSidebar
        from core.services.projects import project_overview
        from core.services.settings import load_settings

        overview = overview or project_overview(store)
        self.state = AppState(store, settings or load_settings(store), overview.default_project_id, overview)
        self.job_events.received.connect(self.state.job_event.emit)
        self.sidebar = ProjectSidebar(self.state)
        self.sidebar.dataset_open_requested.connect(self._open_registered)
        self.pages = {
            "datasets": DatasetsPage(self.state),
            "train": TrainPage(self.state, self.helpers),
            "jobs": JobsPage(self.state),
            "inference": InferencePage(self.state),
        }
        self.stack = QStackedWidget()
        for page in self.pages.values():
            self.stack.addWidget(page)
        splitter = QSplitter()
        splitter.addWidget(self.sidebar)
        splitter.addWidget(self.stack)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([220, 1000])
        self.splitter = splitter
        self._loading.removeEventFilter(self)
        self.setCentralWidget(splitter)

        self.state.page_request.connect(self.show_page)
        self.jobs_page.clone_requested.connect(self._clone_job)
        self.state.jobs_change.connect(self._on_jobs_change)
        self.state.settings_change.connect(self._on_settings_change)
        notifier().error.connect(self._on_task_error)
        # Bound methods, not lambdas: Qt drops the connection when this window is destroyed
        # (the notifier outlives windows).
        notifier().message.connect(self._on_message)
        self.helpers.sysinfo_ready.connect(self._on_sysinfo)
        self.helpers.sysinfo_failed.connect(lambda msg: self.gpu_label.setText("GPU: unknown (detection failed)"))
        self.show_page("datasets")
        splitter_state = QSettings().value("window/splitter")
        if isinstance(splitter_state, QByteArray):
            self.splitter.restoreState(splitter_state)
        self._on_settings_change(self.state.settings)
        self.uploads_timer.start()
        QTimer.singleShot(0, self._refresh_uploads)
        # GPU detection starts once the window is up: it never delays the first paint.
        QTimer.singleShot(0, self.helpers.request_sysinfo)
        from core import gc_policy

        gc_policy.freeze_long_lived()  # modules and widgets live for the session: never rescan them
        from app.widgets.split_panel import preload_chart_library

        QTimer.singleShot(0, preload_chart_library)
        # The frameworks come from the adapters' declarations; only the usable ones get a model list.
        QTimer.singleShot(0, self.helpers.prefetch_usable_models)
        self.ready.emit()

    # -- chrome ---------------------------------------------------------------------------------
    def _build_actions(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        self.open_action = QAction(icon("open"), "&Open dataset…", self)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.open_action.triggered.connect(self.open_dataset_dialog)
        open_zip = QAction(icon("zip"), "Open dataset &.zip…", self)
        open_zip.triggered.connect(self._open_zip)
        open_url = QAction(icon("cloud"), "Open dataset from &R2 URL…", self)
        open_url.triggered.connect(self._open_url)
        self.new_job_action = QAction(icon("train"), "&New job", self)
        self.new_job_action.setShortcut(QKeySequence.StandardKey.New)
        self.new_job_action.triggered.connect(lambda: self.show_page("train"))
        new_project = QAction(icon("add"), "New &project…", self)
        new_project.setShortcut(QKeySequence("Ctrl+Shift+N"))
        new_project.triggered.connect(lambda: self.sidebar.new_project() if self.state else None)
        self.settings_action = QAction(icon("settings"), "&Settings…", self)
        self.settings_action.setShortcut(QKeySequence("Ctrl+,"))
        self.settings_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        self.settings_action.triggered.connect(self.open_settings)
        self.weights_action = QAction(icon("cloud"), "Pretrained &weights…", self)
        self.weights_action.setShortcut(QKeySequence("Ctrl+Shift+W"))
        self.weights_action.setIconText("Weights")  # the toolbar's short label
        self.weights_action.triggered.connect(self.open_weights)
        self.quit_action = QAction("&Quit", self)
        self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        self.quit_action.triggered.connect(self.close)
        for action in (self.open_action, open_zip, open_url):
            file_menu.addAction(action)
        file_menu.addSeparator()
        file_menu.addAction(self.new_job_action)
        file_menu.addAction(new_project)
        file_menu.addSeparator()
        file_menu.addAction(self.weights_action)
        file_menu.addAction(self.settings_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)

        view_menu = menu.addMenu("&View")
        toolbar = QToolBar("Pipeline")
        toolbar.setObjectName("pipeline")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        group = QActionGroup(self)
        self.page_actions: dict[str, QAction] = {}
        for number, (key, label, icon_name) in enumerate(PAGES, start=1):
            action = QAction(icon(icon_name), label, self)
            action.setCheckable(True)
            action.setShortcut(QKeySequence(f"Ctrl+{number}"))
            action.triggered.connect(lambda _checked=False, k=key: self.show_page(k))
            group.addAction(action)
            toolbar.addAction(action)
            view_menu.addAction(action)
            self.page_actions[key] = action
        spacer = QWidget()
        spacer.setSizePolicy(spacer.sizePolicy().horizontalPolicy().Expanding,
                             spacer.sizePolicy().verticalPolicy().Preferred)
        toolbar.addWidget(spacer)
        toolbar.addAction(self.weights_action)
        toolbar.addAction(self.settings_action)
        self.addToolBar(toolbar)
        help_menu = menu.addMenu("&Help")
        about = QAction(f"About {APP_NAME}", self)
        about.triggered.connect(self.open_about)
        help_menu.addAction(about)

    def open_about(self) -> QDialog:
        from app.about_dialog import AboutDialog

        dialog = AboutDialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.gpu_label = QLabel("GPU: detecting…")
        self.online_label = QLabel()
        self.uploads_label = QLabel()
        for label in (self.gpu_label, self.online_label, self.uploads_label):
            label.setContentsMargins(8, 0, 8, 0)
            bar.addPermanentWidget(label)
        self.uploads_timer = QTimer(self)
        self.uploads_timer.setInterval(5000)
        self.uploads_timer.timeout.connect(self._refresh_uploads)

    @property
    def datasets_page(self) -> DatasetsPage:
        page = self.pages["datasets"]
        return page  # type: ignore[return-value]

    @property
    def train_page(self) -> TrainPage:
        page = self.pages["train"]
        return page  # type: ignore[return-value]

    @property
    def jobs_page(self) -> JobsPage:
        page = self.pages["jobs"]
        return page  # type: ignore[return-value]

    def current_page(self) -> str:
        return next(key for key, page in self.pages.items() if page is self.stack.currentWidget())

    def show_page(self, key: str) -> None:
        if key not in self.pages:
            return
        self.stack.setCurrentWidget(self.pages[key])
        self.page_actions[key].setChecked(True)

    # -- actions --------------------------------------------------------------------------------
    def open_dataset_dialog(self) -> None:
        self.show_page("datasets")
        self.datasets_page.choose_folder()

    def _open_zip(self) -> None:
        self.show_page("datasets")
        self.datasets_page.choose_zip()

    def _open_url(self) -> None:
        self.show_page("datasets")
        self.datasets_page.choose_r2_url()

    def _open_registered(self, info: Any) -> None:
        self.show_page("datasets")
        self.datasets_page.open_registered(info)

    def open_settings(self) -> SettingsDialog | None:
        from app.settings_dialog import SettingsDialog

        if self.state is None:
            return None
        devices = [("Automatic (first GPU, else CPU)", "auto"), ("CPU", "cpu")]
        for device in (self.helpers.cached_sysinfo() or {}).get("devices", []):
            if str(device.get("id", "")).startswith("cuda"):
                devices.append((f"{device['id']}: {device.get('name', 'GPU')}", device["id"]))
        dialog = SettingsDialog(self.state, self, devices)
        dialog.accepted.connect(lambda: self._after_settings(dialog))
        dialog.open()
        return dialog

    def open_weights(self) -> WeightsDialog | None:
        """The Weights view (what is cached, import, download) in one non-modal window, raised if open."""
        from app.widgets.weights_view import WeightsDialog

        if self.state is None:
            return None
        if self._weights_dialog is None:
            self._weights_dialog = WeightsDialog(self.state, self)
            self._weights_dialog.view.settings_requested.connect(self.open_settings)
        else:
            self._weights_dialog.view.refresh()
        self._weights_dialog.show()
        self._weights_dialog.raise_()
        return self._weights_dialog

    def _after_settings(self, dialog: SettingsDialog) -> None:
        if dialog.saved_notice:
            self.statusBar().showMessage(dialog.saved_notice, 10000)

    def _clone_job(self, config: Any) -> None:
        """Jobs page → "Clone": the job's settings in the configurator, ready to change and start."""
        self.show_page("train")
        self.train_page.apply_config(config)

    def _on_jobs_change(self) -> None:
        if self.queue is not None:
            self.queue.wake()

    def _on_settings_change(self, settings: Settings) -> None:
        self.online_label.setText("Offline mode" if settings.offline_mode else "Online")
        self.online_label.setToolTip("Offline: nothing is downloaded (weights, datasets). Change in Settings."
                                     if settings.offline_mode else "Downloads are allowed. Change in Settings.")
        if self.queue is not None:
            self.queue.max_concurrent = max(1, settings.max_concurrent_jobs)

    def _on_sysinfo(self, info: dict[str, Any]) -> None:
        gpus = [d for d in info.get("devices", []) if str(d.get("id", "")).startswith("cuda")]
        if gpus:
            first = gpus[0]
            more = f" +{len(gpus) - 1}" if len(gpus) > 1 else ""
            self.gpu_label.setText(f"GPU: {first.get('name')} ({format_bytes(first.get('memory_bytes'))}){more}")
        else:
            self.gpu_label.setText("No GPU found: training runs on the CPU")
        self.gpu_label.setToolTip("\n".join(f"{k} {v}" for k, v in info.get("versions", {}).items()))

    def _refresh_uploads(self) -> None:
        """Count unsynced uploads in a worker; a count still running is not started twice."""
        from core.services.sync import pending_uploads

        if self.state is None or (self._uploads_task is not None and not self._uploads_task.done):
            return
        store = self.state.store
        self._uploads_task = run_task(lambda _st: pending_uploads(store), owner=self, title="Count uploads",
                                      on_result=self._show_uploads, on_error=lambda _info: None)

    def _show_uploads(self, pending: int) -> None:
        self.uploads_label.setText(f"{pending} upload{'s' if pending != 1 else ''} pending" if pending else
                                   "Uploads: all synced")

    def _on_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 6000)

    def _on_task_error(self, info: ErrorInfo) -> None:
        # Unhandled background errors: one line in the status bar, the traceback in the tooltip.
        self.statusBar().showMessage(f"{info.title} failed: {info.message}", 15000)
        self.statusBar().setToolTip(info.detail)

    # -- drag and drop --------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event: Any) -> None:
        event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if not paths:
            return
        if self.state is None:
            return
        event.acceptProposedAction()
        self.show_page("datasets")
        self.datasets_page.add_dataset_path(paths[0])

    # -- geometry -------------------------------------------------------------------------------
    def _restore_geometry(self) -> None:
        settings = QSettings()
        geometry = settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 800)
        state = settings.value("window/state")
        if isinstance(state, QByteArray):
            self.restoreState(state)

    def closeEvent(self, event: QCloseEvent) -> None:
        settings = QSettings()
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState())
        if self.state is not None:
            settings.setValue("window/splitter", self.splitter.saveState())
            self.datasets_page.browser.model.loader.clear_pending()
        settings.sync()
        self.helpers.shutdown()
        super().closeEvent(event)
