"""The Weights view: which pretrained weights are on this computer, per framework, and the two ways to
add some (import a file, download a Hub model), over ``core.services.weights`` like ``vision-platform
weights``.

Jobs never download (workers are offline), so this is where weights arrive, before a job. A download
runs only when Settings allow downloads; otherwise its button says why it is off. Everything that reads
folders, hashes files or touches the network runs in a worker (``TaskSlots``); a download shows its
progress in place, with Cancel, and a cancelled one leaves nothing behind (the service removes it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.look import HINT_STYLE, format_bytes, icon, plural
from app.models.app_state import AppState
from app.widgets.common import Banner, BusyRow, confirm_pickle_import
from app.workers import ErrorInfo, TaskHandle, TaskSlots, TaskState, run_task
from core.services import weights as weights_service
from core.services.checkpoints import ConsentRequired
from core.services.weights import CachedWeights, DownloadResult
from core.settings import Settings

WEIGHT_FILTER = "Weights (*.safetensors *.pt *.pth *.bin *.ckpt);;All files (*)"
OFFLINE_REASON = "Downloads are off: offline mode is on in Settings. Allow downloads there to fetch a model."
BYTE_STEPS = 1000  # the progress bar's steps per file (byte progress within the file now downloading)


class DownloadMeter:
    """Turns the service's per-file and per-byte reports into one progress bar: ``BYTE_STEPS`` per file."""

    def __init__(self, repo_id: str, report: Callable[[int, int, str], None]) -> None:
        self.repo_id, self.report = repo_id, report
        self.done, self.total, self.name = 0, 1, ""

    def file(self, done: int, total: int, name: str) -> None:
        self.done, self.total, self.name = done, max(total, 1), name
        self.report(done * BYTE_STEPS, self.total * BYTE_STEPS, self._text())

    def bytes(self, count: int, size: int | None) -> None:
        fraction = min(count / size, 1.0) if size else 0.0
        amount = f"{format_bytes(count)} of {format_bytes(size)}" if size else format_bytes(count)
        self.report(int((self.done + fraction) * BYTE_STEPS), self.total * BYTE_STEPS, f"{self._text()}: {amount}")

    def _text(self) -> str:
        return (f"Downloading {self.repo_id}: {self.name} ({self.done + 1} of {self.total})" if self.name else
                f"Downloaded {self.repo_id}")


class WeightsView(QWidget):
    settings_requested = Signal()  # "Open Settings…": the main window opens its Settings dialog
    listed = Signal()  # a listing was shown (tests and the dialog's title count)

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.tasks = TaskSlots(self)
        self.found: list[CachedWeights] = []
        self.last_download: DownloadResult | None = None
        self._download: TaskHandle | None = None  # one at a time: a cancelled one still cleans up until finished
        # Cancel is asked of the service, not of the task: the result then says whether it was cancelled
        # (a cancel that came after the last file is no cancellation; the task's own state would say it was).
        self._stop_download = threading.Event()
        self.banner = Banner()
        intro = QLabel("Pretrained weights on this computer. Jobs never download anything: a model's weights must "
                       "be here before it trains from pretrained weights.")
        intro.setWordWrap(True)
        intro.setStyleSheet(HINT_STYLE)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Name", "Size", "Location"])
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        header = self.tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.summary = QLabel()
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.import_button = QPushButton(icon("open"), "Import file…")
        self.import_button.setToolTip("Copy a weights file into the data folder (safetensors; a pickle-based file "
                                      "needs your consent, recorded by its sha256)")
        self.import_button.clicked.connect(self.choose_import)
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(self.import_button)
        top.addWidget(self.refresh_button)
        self.repo_edit = QLineEdit()
        self.repo_edit.setPlaceholderText("Hub model id, e.g. google/vit-base-patch16-224 or timm/resnet18.a1_in1k")
        self.repo_edit.returnPressed.connect(self.start_download)
        self.repo_edit.textChanged.connect(self._update_download_button)
        self.download_button = QPushButton(icon("cloud"), "Download")
        self.download_button.clicked.connect(self.start_download)
        download_row = QHBoxLayout()
        download_row.addWidget(QLabel("Download from the Hugging Face Hub:"))
        download_row.addWidget(self.repo_edit, 1)
        download_row.addWidget(self.download_button)
        self.download_reason = QLabel()
        self.download_reason.setWordWrap(True)
        self.settings_button = QPushButton(icon("settings"), "Open Settings…")
        self.settings_button.clicked.connect(self.settings_requested.emit)
        reason_row = QHBoxLayout()
        reason_row.addWidget(self.download_reason, 1)
        reason_row.addWidget(self.settings_button)
        self.busy = BusyRow()
        self.busy.cancel_clicked.connect(self.cancel_download)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.banner)
        layout.addLayout(top)
        layout.addWidget(self.tree, 1)
        layout.addLayout(download_row)
        layout.addLayout(reason_row)
        layout.addWidget(self.busy)
        self.state.settings_change.connect(self._on_settings_change)
        self._on_settings_change(self.state.settings)
        self.refresh()

    # -- listing --------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """List what is cached, in a worker (folder scans, and the declarations helper on first use)."""
        self.summary.setText("Looking for weights…")
        self.tasks.start("list", lambda _st: weights_service.list_weights(), title="List weights",
                         on_result=self._show, on_error=self._list_failed)

    def _show(self, found: list[CachedWeights]) -> None:
        self.found = found
        self.tree.clear()
        for framework, items in weights_service.by_framework(found).items():
            total = sum(item.size_bytes for item in items)
            group = QTreeWidgetItem([f"{framework} ({plural(len(items), 'model')})", format_bytes(total), ""])
            font = group.font(0)
            font.setBold(True)
            group.setFont(0, font)
            for item in items:
                row = QTreeWidgetItem([item.name, format_bytes(item.size_bytes), item.path])
                row.setToolTip(2, item.path)
                row.setData(0, Qt.ItemDataRole.UserRole, item)
                group.addChild(row)
            self.tree.addTopLevelItem(group)
            group.setExpanded(True)
        total = sum(item.size_bytes for item in found)
        self.summary.setText(f"{plural(len(found), 'model')} cached, {format_bytes(total)} in all" if found else
                             "No pretrained weights on this computer yet: import a file or download a model.")
        self.listed.emit()

    def _list_failed(self, error: ErrorInfo) -> None:
        self.summary.setText("")
        self.banner.show_message(f"Could not list the weights: {error.message}", detail=error.detail)

    def rows(self) -> list[tuple[str, str, int, str]]:
        """What the list shows: (framework, name, size in bytes, path) per cached model."""
        return [(w.framework, w.name, w.size_bytes, w.path) for w in self.found]

    # -- import ---------------------------------------------------------------------------------------
    def choose_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a weights file", "", WEIGHT_FILTER)
        if path:
            self.import_file(path)

    def import_file(self, path: str, *, consent: bool = False) -> None:
        """Copy ``path`` in; a pickle-based file first asks for consent (its sha256 is then recorded)."""
        store = self.state.store

        def work(_st: TaskState) -> Path | ConsentRequired:
            try:
                return weights_service.import_file(store, path, consent=consent)
            except ConsentRequired as refusal:  # a question for the user, not a failure
                return refusal

        self.tasks.start("import", work, title="Import weights", on_result=lambda answer: self._imported(path, answer),
                         on_error=lambda info: self.banner.show_message(f"Could not import {path}: {info.message}",
                                                                        detail=info.detail))

    def _imported(self, path: str, answer: Path | ConsentRequired) -> None:
        if isinstance(answer, Path):
            self.banner.show_message(f"Imported {Path(path).name} as {answer}.", level="info")
            self.refresh()
        elif confirm_pickle_import(self, path):
            self.import_file(path, consent=True)

    # -- download -------------------------------------------------------------------------------------
    def _on_settings_change(self, settings: Settings) -> None:
        self.download_reason.setText(OFFLINE_REASON if settings.offline_mode else "")
        self.download_reason.setVisible(settings.offline_mode)
        self.settings_button.setVisible(settings.offline_mode)
        self._update_download_button()

    def _update_download_button(self, *_: Any) -> None:
        offline = self.state.settings.offline_mode
        self.download_button.setEnabled(not offline and bool(self.repo_edit.text().strip())
                                        and not self.downloading())
        self.download_button.setToolTip(OFFLINE_REASON if offline else
                                        "Fetch the model's safetensors weights and configs (never pickles or code)")
        self.repo_edit.setEnabled(not offline)

    def start_download(self) -> None:
        repo_id = self.repo_edit.text().strip()
        if not self.download_button.isEnabled() or not repo_id:
            return
        store, framework = self.state.store, weights_service.hub_framework(repo_id)
        stop = self._stop_download = threading.Event()

        def work(st: TaskState) -> DownloadResult:
            meter = DownloadMeter(repo_id, st.progress)
            return weights_service.download(store, framework, repo_id, progress=meter.file, received=meter.bytes,
                                            cancelled=lambda: stop.is_set() or st.cancelled)

        self.banner.clear()
        self.busy.start(f"Downloading {repo_id}…")
        self._download = run_task(work, owner=self, title="Download weights", on_result=self._downloaded,
                                  on_error=lambda info: self._download_failed(repo_id, info),
                                  on_progress=self._on_progress, on_finished=self._download_finished)
        self._update_download_button()

    def _on_progress(self, done: int, total: int, text: str) -> None:
        self.busy.progress(done, total, "" if self._stop_download.is_set() else text)  # "Cancelling…" stays

    def downloading(self) -> bool:
        return self._download is not None and not self._download.done

    def cancel_download(self) -> None:
        """Stop at the next chunk; the service then removes what was written (the row says so until then)."""
        if self.downloading():
            self.busy.label.setText("Cancelling…")
            self.busy.cancel.setEnabled(False)
            self._stop_download.set()

    def _downloaded(self, result: DownloadResult) -> None:
        self.last_download = result
        if result.cancelled:
            self.banner.show_message(f"Download of {result.repo_id} cancelled; nothing was kept.", level="info")
            return
        hashes = "\n".join(f"{sha256}  {name}" for name, sha256 in result.files.items())
        self.banner.show_message(f"Downloaded {result.repo_id}: {plural(len(result.files), 'file')}, sha256 recorded.",
                                 level="info", detail=f"{result.folder}\n\n{hashes}")
        self.refresh()

    def _download_failed(self, repo_id: str, error: ErrorInfo) -> None:
        self.banner.show_message(f"Could not download {repo_id}: {error.message}", detail=error.detail)

    def _download_finished(self) -> None:
        self.busy.stop()
        self.busy.cancel.setEnabled(True)
        self._update_download_button()


class WeightsDialog(QDialog):
    """The Weights view in its own window (File → Pretrained weights…), not modal: pages stay usable."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Pretrained weights")
        self.resize(900, 520)
        self.view = WeightsView(state, self)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view)
