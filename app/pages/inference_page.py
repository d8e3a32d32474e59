"""Inference page: pick a model, drop images on the canvas, see and filter its predictions.

The model runs in a warm ``infer-worker`` process (``core.inference.InferenceClient``), driven from
one dedicated worker thread so requests keep their order (load before predict) and the GUI thread
never waits. Each image is predicted once at a low threshold; the confidence and IoU sliders
re-filter that result in this process (``filter_predictions``), so moving them runs no inference.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, Qt, QThreadPool
from PySide6.QtGui import QImage, QImageReader, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.look import HINT_STYLE, icon
from app.models.app_state import AppState
from app.widgets.common import confirm_pickle_import
from app.widgets.inference_canvas import DROP_HINT, InferenceCanvas
from app.workers import ErrorInfo, TaskSlots, run_task
from core.services.checkpoints import ModelChoice, file_choice, model_choices, vouch
from core.services.inference import (
    DEFAULT_CONF,
    DEFAULT_IOU,
    ExportReport,
    ImagePrediction,
    dice_json_path,
    export_dice,
    image_files,
    summary,
    write_dice,
)
from core.trust import CONSENT_MARKER

PICK_FILE = "__file__"


@dataclass
class Prediction:
    """What one image's task brings back to the GUI thread."""

    path: Path
    model_key: str | None
    image: QImage | None = None
    result: dict[str, Any] | None = None
    error: str | None = None


def read_image(path: Path) -> QImage:
    """Decode for display after the same limits the worker applies (nothing huge is decoded here)."""
    from core.datasets.errors import DatasetError
    from core.datasets.images import check_image_limits

    try:
        check_image_limits(path)
    except DatasetError as exc:
        raise ValueError(f"{path.name}: {exc}") from None
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    image = reader.read()
    if image.isNull():
        raise ValueError(f"{path.name} is not an image this app can read ({reader.errorString()})")
    return image


class InferencePage(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.client: Any = None  # core.inference.InferenceClient, created on first use
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)  # one worker process, requests in order
        self.choices: list[ModelChoice] = []
        self.model: ModelChoice | None = None
        self.loaded: dict[str, Any] | None = None
        self.load_error: str | None = None
        self.images: list[Path] = []
        self.current: Path | None = None
        self.raw: dict[Path, dict[str, Any]] = {}  # per image, for the loaded model
        self.errors: dict[Path, str] = {}
        self.filtered: dict[str, Any] | None = None
        self.last_filter_ms = 0.0
        self._batch_total = 0
        self._batch_done = 0
        self._batch_cancel = False
        self._listing = False  # dropped folders are being listed (in a worker)
        self.last_export: ExportReport | None = None
        self.tasks = TaskSlots(self)  # "models", "load", "list", "export": the newest wins
        self._build()
        state.project_change.connect(lambda _pid: self.refresh_models())
        state.job_event.connect(lambda _jid, event: self.refresh_models() if event.get("type") == "job_end" else None)
        instance = QCoreApplication.instance()
        if instance is not None:
            instance.aboutToQuit.connect(self.shutdown)
        self._alive = True
        self.destroyed.connect(lambda *_: self._forget())

    def _forget(self) -> None:
        """The window is gone: late task results are dropped and the worker process is ended."""
        self._alive = False
        self._batch_cancel = True
        client, self.client = self.client, None
        if client is not None:
            import threading

            threading.Thread(target=client.close, daemon=True, name="close-infer-worker").start()

    # -- layout -----------------------------------------------------------------------------------
    def _build(self) -> None:
        self.canvas = InferenceCanvas()
        # Drag to pan, wheel to zoom: scroll bars would only take room from the picture.
        self.canvas.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.canvas.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.canvas.files_dropped.connect(self.open_paths)
        self.canvas.next_requested.connect(lambda: self._step(1))
        self.canvas.previous_requested.connect(lambda: self._step(-1))

        self.model_box = QComboBox()
        self.model_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_box.setMinimumContentsLength(24)
        self.model_box.activated.connect(self._on_model_activated)
        self.model_status = QLabel("Pick a finished job's checkpoint or a checkpoint file.")
        self.model_status.setWordWrap(True)
        self.model_status.setStyleSheet(HINT_STYLE)
        self.load_bar = QProgressBar()
        self.load_bar.setRange(0, 0)
        self.load_bar.setTextVisible(False)
        self.load_bar.hide()
        model_group = QGroupBox("Model")
        model_layout = QVBoxLayout(model_group)
        model_layout.addWidget(self.model_box)
        model_layout.addWidget(self.load_bar)
        model_layout.addWidget(self.model_status)

        self.conf_slider, self.conf_label = self._slider(DEFAULT_CONF)
        self.iou_slider, self.iou_label = self._slider(DEFAULT_IOU)
        self.conf_slider.setToolTip("Hide predictions below this confidence")
        self.iou_slider.setToolTip("Overlapping boxes of one class above this IoU are merged (non-maximum suppression)")
        filter_group = QGroupBox("Filter")
        filter_form = QFormLayout(filter_group)
        filter_form.addRow("Confidence", self._pair(self.conf_slider, self.conf_label))
        filter_form.addRow("IoU (overlap)", self._pair(self.iou_slider, self.iou_label))

        self.time_label = QLabel("")
        self.count_label = QLabel("")
        self.count_label.setWordWrap(True)
        self.top_k = QListWidget()
        self.top_k.setMaximumHeight(140)
        self.top_k.hide()
        results_group = QGroupBox("Result")
        results_layout = QVBoxLayout(results_group)
        results_layout.addWidget(self.count_label)
        results_layout.addWidget(self.top_k)
        results_layout.addWidget(self.time_label)

        open_button = QPushButton(icon("open"), "Open images…")
        open_button.clicked.connect(self.open_images_dialog)
        folder_button = QPushButton(icon("dataset"), "Open folder…")
        folder_button.clicked.connect(self.open_folder_dialog)
        self.save_button = QPushButton("Save overlay PNG…")
        self.save_button.clicked.connect(self.save_overlay_dialog)
        self.export_button = QPushButton("Export DICE JSON")
        self.export_button.setToolTip("Write the shown predictions as a labelme/DICE JSON beside the image, to "
                                      "correct in labelme and add to a dataset")
        self.export_button.clicked.connect(lambda: self.export_dice())
        self.export_all_button = QPushButton("Export all (batch)")
        self.export_all_button.clicked.connect(lambda: self.export_all())

        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(model_group)
        side_layout.addWidget(filter_group)
        side_layout.addWidget(results_group)
        for button in (open_button, folder_button, self.save_button, self.export_button, self.export_all_button):
            side_layout.addWidget(button)
        side_layout.addStretch(1)
        side.setMinimumWidth(280)
        side.setMaximumWidth(360)

        self.batch_bar = QProgressBar()
        self.batch_bar.setFormat("%v / %m images")
        self.batch_cancel = QPushButton("Cancel")
        self.batch_cancel.clicked.connect(self.cancel_batch)
        self.batch_table = QTableWidget(0, 3)
        self.batch_table.setHorizontalHeaderLabels(["Image", "Result", "Time"])
        self.batch_table.verticalHeader().hide()
        self.batch_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.batch_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.batch_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.batch_table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.batch_table.cellClicked.connect(lambda row, _col: self.show_image_at(row))
        self.batch = QWidget()
        batch_layout = QVBoxLayout(self.batch)
        batch_layout.setContentsMargins(0, 0, 0, 0)
        bar_row = QHBoxLayout()
        bar_row.addWidget(self.batch_bar, 1)
        bar_row.addWidget(self.batch_cancel)
        batch_layout.addLayout(bar_row)
        batch_layout.addWidget(self.batch_table, 1)
        self.batch.hide()

        centre = QSplitter(Qt.Orientation.Vertical)
        centre.addWidget(self.canvas)
        centre.addWidget(self.batch)
        centre.setStretchFactor(0, 3)
        centre.setStretchFactor(1, 1)
        layout = QHBoxLayout(self)
        layout.addWidget(side)
        layout.addWidget(centre, 1)
        QShortcut(QKeySequence.StandardKey.Paste, self, self.paste)
        self._update_buttons()

    def _slider(self, value: float) -> tuple[QSlider, QLabel]:
        slider = QSlider(Qt.Orientation.Horizontal)
        slider.setRange(0, 100)
        slider.setValue(int(round(value * 100)))
        label = QLabel(f"{value:.2f}")
        label.setMinimumWidth(34)
        def changed(value: int) -> None:
            label.setText(f"{value / 100:.2f}")
            self.refilter()

        slider.valueChanged.connect(changed)
        return slider, label

    @staticmethod
    def _pair(slider: QSlider, label: QLabel) -> QWidget:
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(slider, 1)
        row.addWidget(label)
        box.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        return box

    @property
    def conf(self) -> float:
        return self.conf_slider.value() / 100

    @property
    def iou(self) -> float:
        return self.iou_slider.value() / 100

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.refresh_models()

    # -- models -----------------------------------------------------------------------------------
    def refresh_models(self) -> None:
        store, project_id = self.state.store, self.state.project_id
        self.tasks.start("models", lambda _st: model_choices(store, project_id), title="List models",
                         on_result=self._fill_models)

    def _fill_models(self, choices: list[ModelChoice]) -> None:
        if not self._alive:
            return
        if self.model is not None and self.model not in choices:
            choices = [*choices, self.model]  # a picked file stays in the list
        if choices == self.choices and self.model_box.count() == len(choices) + 1:
            self._pick_first_model()  # listed while hidden: the first look at the page still picks one
            return
        self.choices = choices
        self.model_box.blockSignals(True)
        self.model_box.clear()
        if not choices:
            self.model_box.addItem("No finished jobs yet — pick a file", None)
        for choice in choices:
            self.model_box.addItem(choice.label, choice.key)
        self.model_box.addItem(icon("open"), "Checkpoint file…", PICK_FILE)
        if self.model is not None:
            self.model_box.setCurrentIndex(self.model_box.findData(self.model.key))
        self.model_box.blockSignals(False)
        self._pick_first_model()

    def _pick_first_model(self) -> None:
        # The newest job's best checkpoint: the obvious first pick. Only once the page is open:
        # a finished job elsewhere must not start an inference worker nobody asked for.
        if self.model is None and self.choices and self.isVisible():
            self.load_model(self.choices[0])

    def _on_model_activated(self, index: int) -> None:
        data = self.model_box.itemData(index)
        if data == PICK_FILE:
            path, _ = QFileDialog.getOpenFileName(self, "Open a checkpoint", "", "Models (*.pt *.pth *.safetensors *.onnx *.torchscript)"
                                                  ";;All files (*)")
            if path:
                self.load_model(file_choice(path))
            elif self.model is not None:
                self.model_box.setCurrentIndex(self.model_box.findData(self.model.key))
            return
        choice = next((c for c in self.choices if c.key == data), None)
        if choice is not None and choice != self.model:
            self.load_model(choice)

    def _client(self) -> Any:
        if self.client is None:
            from core.inference import InferenceClient

            self.client = InferenceClient()
        return self.client

    def load_model(self, choice: ModelChoice, *, trusted: bool | None = None) -> None:
        self.model = choice
        self.loaded = None
        self.load_error = None
        self.raw.clear()
        self.errors.clear()
        if self.model_box.findData(choice.key) < 0:
            self._fill_models([*self.choices, choice])
        self.model_box.setCurrentIndex(self.model_box.findData(choice.key))
        client = self._client()
        first = client.loaded is None
        self.model_status.setText("Starting the inference worker and loading the model (first time: several "
                                  "seconds)…" if first else f"Loading {Path(choice.path).name}…")
        self.load_bar.show()
        consent = choice.consented if trusted is None else trusted
        store = self.state.store

        def work(_st: Any) -> dict[str, Any]:
            from core.services.inference import load_model

            # A picked file may still be one this app wrote: its content decides, not its folder.
            return load_model(client, vouch(store, choice), trusted=consent)

        self.tasks.start("load", work, title="Load model", pool=self.pool,
                         on_result=lambda info: self._on_loaded(choice, info),
                         on_error=lambda error: self._on_load_error(choice, error))
        if self.current is not None:
            self._predict(self.current)

    def _on_loaded(self, choice: ModelChoice, info: dict[str, Any]) -> None:
        if not self._alive:
            return
        self.load_bar.hide()
        task = info.get("task")
        self.loaded = info
        detects = task in ("detect", "segment", "pose")
        self.iou_slider.setEnabled(detects)
        self.iou_slider.setToolTip("Overlapping boxes of one class above this IoU are merged (non-maximum "
                                   "suppression)" if detects else "Classification has no boxes to merge")
        self.model_box.setToolTip(choice.label)
        names = info.get("class_names") or []
        classes = f" · {len(names)} classes: {', '.join(names[:6])}{'…' if len(names) > 6 else ''}" if names else ""
        self.model_status.setText(f"{Path(choice.path).name}: {task} model{classes} · loaded in "
                                  f"{info['wall_ms'] / 1000:.1f} s")
        if self.current is None:
            self.canvas.show_message(DROP_HINT, level="hint")

    def _on_load_error(self, choice: ModelChoice, error: ErrorInfo) -> None:
        if not self._alive:
            return
        self.load_bar.hide()
        if CONSENT_MARKER in error.message and not choice.consented:
            situation = "This file was not written by this app and you have not imported it as trusted."
            if confirm_pickle_import(self, str(choice.path), title="Trust this checkpoint?", situation=situation,
                                     action="Load it"):
                self.load_model(choice, trusted=True)
                return
        self.load_error = f"This model cannot be loaded: {error.message}"
        self.model_status.setText(self.load_error)
        self.canvas.show_message(self.load_error)

    # -- images -----------------------------------------------------------------------------------
    def open_images_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open images", "", "Images (*.jpg *.jpeg *.png *.bmp *.webp "
                                                "*.tif *.tiff);;All files (*)")
        if paths:
            self.open_paths(paths)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        if folder:
            self.open_paths([folder])

    def paste(self) -> None:
        from PySide6.QtWidgets import QApplication

        mime = QApplication.clipboard().mimeData()
        if mime is None:
            return
        if mime.hasUrls() and any(url.isLocalFile() for url in mime.urls()):
            self.open_paths([url.toLocalFile() for url in mime.urls() if url.isLocalFile()])
            return
        image = QApplication.clipboard().image()
        if image.isNull():
            self.canvas.show_message("The clipboard holds no image.", level="warning")
            return
        from core import paths

        folder = paths.cache_dir() / "pasted"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"pasted_{time.strftime('%Y%m%d_%H%M%S')}.png"
        if not image.save(str(target)):
            self.canvas.show_message(f"Could not save the pasted image to {target}.")
            return
        self.open_paths([str(target)])

    def open_paths(self, paths: list[str]) -> None:
        """Show dropped or opened files; folders are listed in a worker, then the batch starts."""
        self.cancel_batch()
        self._listing = True
        self.tasks.start("list", lambda _st: image_files(paths), title="List images", on_result=self._open_files,
                         on_error=self._on_list_error)

    def _on_list_error(self, error: ErrorInfo) -> None:
        self._listing = False
        self.canvas.show_message(f"Could not open that: {error.message}")

    def _open_files(self, files: list[Path]) -> None:
        self._listing = False
        if not files:
            self.canvas.show_message("No images found there (jpg, png, bmp, webp, tif).", level="warning")
            return
        self.images = files
        self.errors = {path: msg for path, msg in self.errors.items() if path in files}
        self._batch_cancel = False
        if len(files) > 1:
            self._start_batch(files)
        else:
            self.batch.hide()
        self.show_image_at(0)

    def show_image_at(self, position: int) -> None:
        if not 0 <= position < len(self.images):
            return
        self.current = self.images[position]
        if self.batch.isVisible():
            self.batch_table.selectRow(position)
        self._predict(self.current)  # a cached result only costs the image decode

    def _step(self, delta: int) -> None:
        if self.current in self.images:
            self.show_image_at(self.images.index(self.current) + delta)  # type: ignore[arg-type]

    def _predict(self, path: Path, *, batch_row: int | None = None) -> None:
        client = self._client()
        model_key = self.model.key if self.model is not None else None
        cached = self.raw.get(path)
        show = batch_row is None

        def work(_st: Any) -> Prediction:
            from core.inference import InferenceError
            from core.services.inference import predict_image

            outcome = Prediction(path, model_key)
            if batch_row is not None and self._batch_cancel:
                outcome.error = "cancelled"
                return outcome
            if show:
                try:
                    outcome.image = read_image(path)
                except ValueError as exc:
                    outcome.error = str(exc)
                    return outcome
            if cached is not None:
                outcome.result = cached
            elif client.loaded is not None and model_key is not None:
                try:
                    outcome.result = dict(predict_image(client, path))
                except InferenceError as exc:
                    outcome.error = str(exc)
            return outcome

        run_task(work, title="Predict", pool=self.pool, owner=self, on_result=lambda outcome: self._on_prediction(outcome, batch_row),
                 on_error=lambda error: self._on_prediction(Prediction(path, model_key, error=error.message), batch_row))

    def _on_prediction(self, outcome: Prediction, batch_row: int | None) -> None:
        if not self._alive:
            return
        current_model = self.model.key if self.model is not None else None
        if outcome.model_key == current_model and outcome.result is not None:
            self.raw[outcome.path] = outcome.result
        if outcome.error and outcome.error != "cancelled":
            self.errors[outcome.path] = outcome.error
        if batch_row is not None:
            self._batch_row_done(batch_row, outcome)
            if outcome.path == self.current and self.canvas.image_size is not None and outcome.result is not None:
                self._show_result(self.current)
            return
        if self.batch.isVisible() and outcome.path in self.images:
            # The shown image of a batch was predicted on the display path: its table row counts too.
            row = self.images.index(outcome.path)
            cell = self.batch_table.item(row, 1)
            if cell is not None and cell.text() == "waiting…":
                self._batch_row_done(row, outcome)
        if outcome.path != self.current:
            return
        if outcome.image is not None:
            self.canvas.set_image(outcome.image)
        elif outcome.error:
            self.canvas.clear_image()
        self._show_result(outcome.path)

    def _show_result(self, path: Path) -> None:
        result = self.raw.get(path)
        error = self.errors.get(path)
        if error:
            self.canvas.set_predictions(None)
            self.canvas.show_message(error)
            self.filtered = None
        elif result is None:
            self.canvas.set_predictions(None)
            self.filtered = None
            if self.load_error:
                self.canvas.show_message(self.load_error)
            elif self.model is None:
                self.canvas.show_message("Pick a model (left) to see its predictions on this image.", level="warning")
            else:
                self.canvas.show_message("Running the model…", level="hint")
        else:
            self.canvas.clear_message()
            self.refilter()
        self._update_buttons()

    def refilter(self) -> None:
        """Apply the sliders to the current image's stored predictions (no inference)."""
        from core.inference import filter_predictions

        result = self.raw.get(self.current) if self.current is not None else None
        if result is None:
            return
        started = time.perf_counter()
        self.filtered = filter_predictions(result, conf=self.conf, iou=self.iou)
        self.canvas.set_predictions(self.filtered, raw=result)
        self._show_details(self.filtered)
        self.last_filter_ms = (time.perf_counter() - started) * 1000

    def _show_details(self, result: dict[str, Any]) -> None:
        top_k = result.get("top_k") or []
        classify = bool(top_k) and not result.get("boxes")
        self.top_k.setVisible(classify)
        self.top_k.clear()
        for rank, item in enumerate(top_k, start=1):
            self.top_k.addItem(f"{rank}. {item['label']}  {item['confidence'] * 100:.1f} %")
        self.count_label.setText(summary(result))
        self.time_label.setText(f"Inference: {result.get('inference_time_ms', 0):.0f} ms"
                                + (f" · image {result['image_size'][0]}×{result['image_size'][1]}"
                                   if result.get("image_size") else ""))

    # -- batch ------------------------------------------------------------------------------------
    def _start_batch(self, files: list[Path]) -> None:
        self.batch.show()
        self.batch_table.setRowCount(len(files))
        for row, path in enumerate(files):
            self.batch_table.setItem(row, 0, QTableWidgetItem(path.name))
            self.batch_table.setItem(row, 1, QTableWidgetItem("waiting…"))
            self.batch_table.setItem(row, 2, QTableWidgetItem(""))
        self._batch_total = len(files)
        self._batch_done = 0
        self.batch_bar.setRange(0, len(files))
        self.batch_bar.setValue(0)
        self.batch_cancel.setEnabled(True)
        for row, path in enumerate(files):
            if row:  # the first one is predicted as the shown image
                self._predict(path, batch_row=row)

    def _batch_row_done(self, row: int, outcome: Prediction) -> None:
        if row >= self.batch_table.rowCount() or self.images[row] != outcome.path:
            return
        if outcome.error:
            text, time_text = ("cancelled" if outcome.error == "cancelled" else f"error: {outcome.error}"), ""
        elif outcome.result is not None:
            from core.inference import filter_predictions

            text = summary(filter_predictions(outcome.result, conf=self.conf, iou=self.iou))
            time_text = f"{outcome.result.get('inference_time_ms', 0):.0f} ms"
        else:
            text, time_text = "no model loaded", ""
        self.batch_table.setItem(row, 1, QTableWidgetItem(text))
        self.batch_table.setItem(row, 2, QTableWidgetItem(time_text))
        self._batch_done += 1
        self.batch_bar.setValue(self._batch_done)
        if self._batch_done >= self._batch_total:
            self.batch_cancel.setEnabled(False)

    def cancel_batch(self) -> None:
        self._batch_cancel = True

    def batch_finished(self) -> bool:
        return not self._listing and self._batch_done >= self._batch_total

    # -- output -----------------------------------------------------------------------------------
    def _update_buttons(self) -> None:
        has_result = self.filtered is not None and self.canvas.image_size is not None
        self.save_button.setEnabled(has_result)
        self.export_button.setEnabled(has_result)
        self.export_all_button.setVisible(len(self.images) > 1)

    def save_overlay_dialog(self) -> None:
        if self.current is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save overlay", str(self.current.with_name(
            f"{self.current.stem}_predictions.png")), "PNG image (*.png)")
        if path:
            self.save_overlay(Path(path))

    def save_overlay(self, path: Path) -> bool:
        image = self.canvas.render_overlay()
        if image.isNull() or not image.save(str(path)):
            self.canvas.show_message(f"Could not write {path}.")
            return False
        self._announce(f"Saved {path.name}")
        return True

    def export_dice(self, *, overwrite: bool | None = None) -> Path | None:
        if self.current is None or self.filtered is None:
            return None
        target = dice_json_path(self.current)
        if target.exists() and overwrite is None:
            answer = QMessageBox.question(self, "Replace annotations?",
                                          f"{target.name} already exists beside the image (it may hold your "
                                          "annotations). Replace it with these predictions?")
            overwrite = answer == QMessageBox.StandardButton.Yes
        if target.exists() and not overwrite:
            return None
        try:
            written = write_dice(self.filtered, self.current)
        except OSError as exc:
            self.canvas.show_message(f"Could not write {target}: {exc}")
            return None
        self._announce(f"Wrote {written.name} — open it in labelme to correct it")
        return written

    def export_all(self, *, overwrite: bool = False) -> None:
        """DICE JSON beside every predicted image at the current sliders (written in a worker; an
        existing JSON, maybe the user's annotations, is kept unless ``overwrite``)."""
        from core.inference import filter_predictions

        items = [ImagePrediction(path, filter_predictions(result, conf=self.conf, iou=self.iou))
                 for path in self.images if (result := self.raw.get(path)) is not None]
        self.last_export = None
        self.tasks.start("export", lambda _st: export_dice(items, overwrite=overwrite), title="Export DICE JSON",
                         on_result=self._exported, on_error=lambda error: self.canvas.show_message(error.message))

    def _exported(self, report: ExportReport) -> None:
        self.last_export = report
        kept = f"; kept {len(report.skipped)} existing" if report.skipped else ""
        self._announce(f"Wrote {len(report.written)} DICE JSON files beside the images{kept}")

    def _announce(self, text: str) -> None:
        from app.widgets.announce import announce

        announce(self, text)

    def shutdown(self) -> None:
        self._batch_cancel = True
        client = self.client
        self.client = None
        if client is not None:
            # Closing waits for the worker to quit: never on the GUI thread's critical path at start-up.
            self.pool.waitForDone(2000)
            client.close()

