"""Train page: the job configurator.

Framework → task → model come from the helper process (the GUI never imports a framework). The
hyperparameter form is generated from ``JobConfig``. Every change re-validates the whole config with
the same pydantic schema the CLI uses; invalid fields are marked and Start stays disabled. Presets
are the same YAML that ``vision-platform train`` reads.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from PySide6.QtCore import QSortFilterProxyModel, QStringListModel, Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListView,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.helper_process import HelperService
from app.look import ERROR_COLOUR, HINT_COLOUR, HINT_STYLE, WARNING_COLOUR, format_bytes, icon
from app.models.app_state import AppState, LoadedDataset
from app.widgets.augment_preview import AugmentationOptions, AugmentPreview
from app.widgets.common import Banner, confirm_pickle_import
from app.widgets.config_form import ConfigForm
from app.workers import ErrorInfo, run_task
from core import dataset_store
from core.config import (
    SPLIT_DEFAULTS,
    TASKS,
    ConfigError,
    JobConfig,
    config_from_dict,
    field_help,
    load_config,
    save_config,
)
from core.frameworks import FrameworkInfo, catalog_from_payloads
from core.services import jobs as job_service
from core.services.checkpoints import ConsentRequired, import_weights


@functools.cache
def _cached_defaults() -> dict[str, Any]:
    from core.config import defaults as read_defaults

    return read_defaults()


def defaults() -> dict[str, Any]:
    """defaults.yaml, parsed once (``core.config.defaults`` re-parses the YAML on every call)."""
    return copy.deepcopy(_cached_defaults())




class ModelPicker(QWidget):
    """Search box + list of the framework's models; the chosen name can also be typed."""

    chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Filter models, e.g. resnet* or *vit*")
        self.search.setClearButtonEnabled(True)
        self.names = QStringListModel()
        self.proxy = QSortFilterProxyModel()
        self.proxy.setSourceModel(self.names)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.list = QListView()
        self.list.setModel(self.proxy)
        self.list.setUniformItemSizes(True)
        self.list.setMaximumHeight(150)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setStyleSheet(HINT_STYLE)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.search)
        layout.addWidget(self.list)
        layout.addWidget(self.status)
        self.search.textChanged.connect(self._on_search_change)
        self.list.clicked.connect(lambda index: self.chosen.emit(index.data()))
        self.list.activated.connect(lambda index: self.chosen.emit(index.data()))

    def set_models(self, names: list[str]) -> None:
        self.names.setStringList(names)
        self._on_search_change(self.search.text())

    def _on_search_change(self, text: str) -> None:
        pattern = text.strip()
        if pattern and not any(ch in pattern for ch in "*?["):
            pattern = f"*{pattern}*"
        self.proxy.setFilterWildcard(pattern or "*")
        shown, total = self.proxy.rowCount(), self.names.rowCount()
        if total:
            self.status.setText(f"{shown:,} of {total:,} models" if shown != total else f"{total:,} models")


class TrainPage(QWidget):
    def __init__(self, state: AppState, helpers: HelperService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.helpers = helpers
        tips = field_help()
        self.banner = Banner()

        # -- data ---------------------------------------------------------------------------------
        self.dataset_combo = QComboBox()
        self.dataset_combo.setToolTip(tips.get("dataset", ""))
        self.dataset_summary = QLabel()
        self.dataset_summary.setStyleSheet(HINT_STYLE)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("(automatic: <model> on <dataset>)")
        self.name_edit.setToolTip(tips.get("name", ""))
        data_box = QGroupBox("1  Data")
        data_form = QFormLayout(data_box)
        data_form.addRow("Dataset", self.dataset_combo)
        data_form.addRow("", self.dataset_summary)
        data_form.addRow("Job name", self.name_edit)

        # -- model --------------------------------------------------------------------------------
        self.framework_combo = QComboBox()  # filled from the adapters' declarations (the helper's catalog)
        self.framework_combo.addItem(str(defaults()["framework"]))
        self.framework_combo.setToolTip(tips.get("framework", ""))
        self.task_combo = QComboBox()
        self.task_combo.addItems(list(TASKS))
        self.task_combo.setToolTip(tips.get("task", ""))
        self.model_edit = QLineEdit()
        self.model_edit.setToolTip(tips.get("model", ""))
        self.picker = ModelPicker()
        self.picker.chosen.connect(self.model_edit.setText)
        self.scratch_radio = QRadioButton("From scratch (random initial weights)")
        self.pretrained_radio = QRadioButton("Pretrained weights from the framework cache")
        self.file_radio = QRadioButton("Weights file:")
        self.weights_group = QButtonGroup(self)
        for button in (self.scratch_radio, self.pretrained_radio, self.file_radio):
            self.weights_group.addButton(button)
        self.pretrained_radio.setToolTip(tips.get("pretrained", ""))
        self.file_radio.setToolTip(tips.get("weights", ""))
        self.scratch_radio.setChecked(True)
        self.weights_edit = QLineEdit()
        self.weights_edit.setPlaceholderText("no file chosen")
        import_button = QPushButton(icon("open"), "Import weights file…")
        import_button.clicked.connect(self.import_weights)
        self.availability = QLabel()
        self.availability.setWordWrap(True)
        weights_row = QHBoxLayout()
        weights_row.addWidget(self.file_radio)
        weights_row.addWidget(self.weights_edit, 1)
        weights_row.addWidget(import_button)
        model_box = QGroupBox("2  Model")
        model_form = QFormLayout(model_box)
        model_form.addRow("Framework", self.framework_combo)
        model_form.addRow("Task", self.task_combo)
        model_form.addRow("Model", self.model_edit)
        model_form.addRow("", self.picker)
        start_from = QVBoxLayout()
        start_from.addWidget(self.scratch_radio)
        start_from.addWidget(self.pretrained_radio)
        start_from.addLayout(weights_row)
        start_from.addWidget(self.availability)
        model_form.addRow("Start from", start_from)

        # -- training -----------------------------------------------------------------------------
        self.form = ConfigForm()
        self.device_combo = QComboBox()
        self.device_combo.setToolTip(tips.get("device", ""))
        self._fill_devices(None)
        train_box = QGroupBox("3  Training")
        train_layout = QVBoxLayout(train_box)
        device_form = QFormLayout()
        device_form.addRow("Device", self.device_combo)
        train_layout.addLayout(device_form)
        train_layout.addWidget(self.form)

        self.advanced = QGroupBox("Advanced: framework arguments (YAML)")
        self.advanced.setCheckable(True)
        self.advanced.setChecked(False)
        self.advanced.setToolTip(tips.get("framework_args", ""))
        self.args_edit = QPlainTextEdit()
        self.args_edit.setPlaceholderText("# passed to the framework as they are, e.g.\n# mosaic: 0.0")
        self.args_edit.setMaximumHeight(110)
        self.args_status = QLabel()
        advanced_layout = QVBoxLayout(self.advanced)
        advanced_layout.addWidget(self.args_edit)
        advanced_layout.addWidget(self.args_status)
        self.advanced.setFlat(True)  # collapsed: no empty frame
        self.advanced.toggled.connect(lambda on: self.advanced.setFlat(not on))
        self.advanced.toggled.connect(self.args_edit.setVisible)
        self.advanced.toggled.connect(self.args_status.setVisible)
        self.args_edit.setVisible(False)
        self.args_status.setVisible(False)

        # -- augmentation (app/widgets/augment_preview.py) ------------------------------------------
        self.augmentation = AugmentationOptions()
        self.augmentation.setToolTip(tips.get("augmentation", ""))
        self.preview = AugmentPreview()
        augment_box = self.augment_box = QGroupBox("4  Augmentation")
        augment_layout = QHBoxLayout(augment_box)
        augment_layout.addWidget(self.augmentation, 2)
        augment_layout.addWidget(self.preview, 3)

        # -- actions ------------------------------------------------------------------------------
        self.validation = QLabel()
        self.validation.setWordWrap(True)
        load_button = QPushButton(icon("open"), "Load preset…")
        load_button.clicked.connect(self.load_preset_dialog)
        save_button = QPushButton("Save preset…")
        save_button.clicked.connect(self.save_preset_dialog)
        clone_button = QPushButton("Clone from job…")
        clone_button.clicked.connect(self.clone_from_job_dialog)
        self.start_button = QPushButton(icon("start"), "Start training")
        self.start_button.setDefault(True)
        self.start_button.setMinimumHeight(34)
        self.start_button.clicked.connect(self.start)
        actions = QHBoxLayout()
        actions.addWidget(load_button)
        actions.addWidget(save_button)
        actions.addWidget(clone_button)
        actions.addStretch(1)
        actions.addWidget(self.start_button)

        columns = QHBoxLayout()
        left = QVBoxLayout()
        left.addWidget(data_box)
        left.addWidget(model_box)
        left.addStretch(1)
        right = QVBoxLayout()
        right.addWidget(train_box)
        right.addWidget(self.advanced)
        right.addStretch(1)
        columns.addLayout(left, 1)
        columns.addLayout(right, 1)
        content = QWidget()
        content_layout = QVBoxLayout(content)
        content_layout.addLayout(columns)
        content_layout.addWidget(augment_box)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(content)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        layout = QVBoxLayout(self)
        layout.addWidget(self.banner)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.validation)
        layout.addLayout(actions)

        self.errors: dict[str, str] = {}
        self._pretrained_names: list[str] | None = None
        self._preflight_box: QMessageBox | None = None
        self._apply_values(defaults())
        for signal in (self.dataset_combo.currentIndexChanged, self.task_combo.currentTextChanged,
                       self.model_edit.textChanged, self.weights_edit.textChanged, self.name_edit.textChanged,
                       self.device_combo.currentIndexChanged, self.args_edit.textChanged, self.advanced.toggled,
                       self.weights_group.buttonToggled, self.form.changed, self.augmentation.changed):
            signal.connect(self.revalidate)
        self.framework_combo.currentTextChanged.connect(self._on_framework_change)
        self.task_combo.currentTextChanged.connect(self._on_task_change)
        self.picker.chosen.connect(self._on_model_chosen)
        self.model_edit.textChanged.connect(self._update_availability)
        self.pretrained_radio.toggled.connect(self._update_availability)
        self.helpers.models_ready.connect(self._on_models_ready)
        self.helpers.catalog_ready.connect(self._fill_frameworks)
        self.helpers.models_failed.connect(self._on_models_failed)
        self.helpers.sysinfo_ready.connect(self._fill_devices)
        self.state.overview_change.connect(lambda _overview: self._reload_datasets())
        self.state.project_change.connect(self._on_project_change)
        self._pending_dataset: LoadedDataset | None = None
        self.state.dataset_change.connect(self._on_dataset_change)
        self._reload_datasets()
        self._on_framework_change(self.framework_combo.currentText())
        if self.helpers.cached_catalog() is not None:
            self._fill_frameworks(self.helpers.cached_catalog())
        if self.helpers.cached_sysinfo():
            self._fill_devices(self.helpers.cached_sysinfo())
        self.revalidate()

    # -- pickers ----------------------------------------------------------------------------------
    def _project_datasets(self) -> list[dataset_store.DatasetInfo]:
        """The project's datasets from the state's overview (read in a worker by whoever changed it).

        Copies, so a preset's split chosen here never changes the overview; the open dataset's own
        info carries the split saved on the Datasets page since the overview was read."""
        overview, loaded = self.state.overview, self.state.dataset
        listed = overview.datasets_of(self.state.project_id) if overview is not None else []
        return [dataclasses.replace(loaded.info if loaded is not None and loaded.info.id == info.id else info)
                for info in listed]

    def _reload_datasets(self) -> None:
        current = self.dataset_combo.currentData()
        self.dataset_combo.blockSignals(True)
        self.dataset_combo.clear()
        for info in self._project_datasets():
            self.dataset_combo.addItem(icon("dataset"), f"{info.name} ({info.format}, {info.num_images} images)", info)
        if self.dataset_combo.count() == 0:
            self.dataset_combo.addItem("No dataset yet: add one on the Datasets page", None)
        loaded = self.state.dataset
        self._select_dataset(loaded.info.id if loaded else (current.id if current else None))
        self.dataset_combo.blockSignals(False)
        self._update_dataset_summary()
        self.revalidate()

    def _on_project_change(self, _project_id: int) -> None:
        self._reload_datasets()

    def _select_dataset(self, dataset_id: int | None) -> None:
        for row in range(self.dataset_combo.count()):
            info = self.dataset_combo.itemData(row)
            if info is not None and getattr(info, "id", None) == dataset_id:
                self.dataset_combo.setCurrentIndex(row)
                return

    def _on_dataset_change(self, dataset: LoadedDataset | None) -> None:
        # Opening a dataset happens on the Datasets page: following it here (a DB read, the model
        # list for another framework, validation) waits until this page is shown, so it does not
        # add to the event-loop turn that shows the new dataset.
        if not self.isVisible():
            self._pending_dataset = dataset
            return
        self._follow_dataset(dataset)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        pending, self._pending_dataset = self._pending_dataset, None
        if pending is not None:
            self._follow_dataset(pending)

    def _follow_dataset(self, dataset: LoadedDataset | None) -> None:
        if dataset is not None:
            self._reload_datasets()
            task = dataset.index.task_hint
            if task in TASKS:
                self._offer_task(task)
                if self.task_combo.findText(task) < 0:
                    self.task_combo.addItem(task)
                self.task_combo.setCurrentText(task)

    def selected_dataset(self) -> dataset_store.DatasetInfo | None:
        info = self.dataset_combo.currentData()
        return info if isinstance(info, dataset_store.DatasetInfo) else None

    def _update_dataset_summary(self) -> None:
        info = self.selected_dataset()
        if info is None:
            self.dataset_summary.setText("")
            return
        split = info.split_config or SPLIT_DEFAULTS.model_dump(exclude={"file"})
        self.dataset_summary.setText(
            f"{info.task_type or 'task unknown'} · {info.num_classes} classes · split: {split.get('strategy')} "
            f"{round(float(split.get('ratio', SPLIT_DEFAULTS.ratio)) * 100)} % train, seed {split.get('seed')}"
        )

    # -- what the adapters declare --------------------------------------------------------------------
    def framework_info(self, framework: str | None = None) -> FrameworkInfo | None:
        """The framework as its adapter declares it (model list included once fetched)."""
        name = framework or self.framework_combo.currentText()
        payload = self.helpers.cached_models(name) or (self.helpers.cached_catalog() or {}).get(name)
        return FrameworkInfo.from_payload({"framework": name, **payload}) if payload else None

    def _fill_frameworks(self, catalog: dict[str, Any] | None) -> None:
        usable = [name for name, payload in (catalog or {}).items() if not payload.get("error")]
        if not usable:
            return
        current = self.framework_combo.currentText()
        self.framework_combo.blockSignals(True)
        self.framework_combo.clear()
        self.framework_combo.addItems(usable)
        self.framework_combo.setCurrentText(current if current in usable else usable[0])
        self.framework_combo.blockSignals(False)
        if self.framework_combo.currentText() != current:
            self._on_framework_change(self.framework_combo.currentText())

    def _offer_task(self, task: str) -> None:
        """A dataset of ``task``: keep the framework when it trains that task, else switch to the first
        one that does (as declared), starting from its default model for the task."""
        current = self.framework_info()
        if current is not None and task in current.tasks:
            return
        catalog = catalog_from_payloads(self.helpers.cached_catalog() or {})
        choice = next((info for info in catalog.values() if task in info.tasks and not info.error), None)
        if choice is None:
            return
        previous_default = current.default_model(self.task_combo.currentText()) if current else None
        self.framework_combo.setCurrentText(choice.name)
        if self.model_edit.text() in ("", previous_default, defaults()["model"]):
            self.model_edit.setText(choice.default_model(task) or "")

    def _on_task_change(self, task: str) -> None:
        """A new task starts from the framework's default model for it when the model was a default."""
        info = self.framework_info()
        if info is None:
            return
        defaults_of_framework = set((info.default_models or {}).values()) | {"", defaults()["model"]}
        if self.model_edit.text() in defaults_of_framework and info.default_model(task):
            self.model_edit.setText(info.default_model(task) or "")
        self._show_models(info)

    def _show_models(self, info: FrameworkInfo) -> None:
        """The picker: the task's model families first, then the listed models not tied to another task."""
        task = self.task_combo.currentText()
        families = list(info.families(task))
        other_families = {name for t, names in (info.model_families or {}).items() if t != task for name in names}
        rest = [m for m in (info.models or ()) if m not in families and m not in other_families]
        self.picker.set_models(families + rest)

    def _on_model_chosen(self, model: str) -> None:
        """A from-scratch family takes its sizes from framework_args: offer the declared defaults."""
        info = self.framework_info()
        if info is None or not info.framework_args_defaults or model not in info.families(self.task_combo.currentText()):
            return
        if not self.args_edit.toPlainText().strip():
            self.args_edit.setPlainText(yaml.safe_dump(dict(info.framework_args_defaults), sort_keys=False))
            self.advanced.setChecked(True)

    def _on_framework_change(self, framework: str) -> None:
        self.augmentation.set_framework(framework)
        info = self.framework_info(framework)
        task = self.task_combo.currentText()
        if info is not None and info.tasks and self.model_edit.text() in ("", defaults()["model"]):
            self.model_edit.setText(info.default_model(task if task in info.tasks else info.tasks[0]) or "")
        self.picker.set_models([])
        self.picker.status.setText(f"Listing {framework} models…")
        self._pretrained_names = None
        self.helpers.request_models(framework)
        self._update_availability()
        self.revalidate()

    def _on_models_ready(self, framework: str, payload: dict[str, Any]) -> None:
        if framework != self.framework_combo.currentText():
            return
        tasks = [t for t in payload.get("tasks", []) if t in TASKS] or list(TASKS)
        current_task = self.task_combo.currentText()
        self.task_combo.blockSignals(True)
        self.task_combo.clear()
        self.task_combo.addItems(tasks)
        self.task_combo.setCurrentText(current_task if current_task in tasks else tasks[0])
        self.task_combo.blockSignals(False)
        self._on_task_change(self.task_combo.currentText())
        pretrained = payload.get("pretrained")
        self._pretrained_names = list(pretrained) if isinstance(pretrained, list) else None
        self._update_availability()
        self.revalidate()

    def _on_models_failed(self, framework: str, message: str) -> None:
        if framework == self.framework_combo.currentText():
            self.picker.status.setText(f"Could not list {framework} models ({message}). You can still type a name.")

    def _fill_devices(self, sysinfo: dict[str, Any] | None) -> None:
        current = self.device_combo.currentData() or self.state.settings.default_device
        self.device_combo.blockSignals(True)
        self.device_combo.clear()
        self.device_combo.addItem("Automatic (first GPU, else CPU)", "auto")
        self.device_combo.addItem("CPU", "cpu")
        for device in (sysinfo or {}).get("devices", []):
            if str(device.get("id", "")).startswith("cuda"):
                memory = f" ({format_bytes(device.get('memory_bytes'))})" if device.get("memory_bytes") else ""
                self.device_combo.addItem(f"{device['id']}: {device.get('name', 'GPU')}{memory}", device["id"])
        if sysinfo is None:
            self.device_combo.addItem("Detecting GPUs…", None)
            self.device_combo.model().item(self.device_combo.count() - 1).setEnabled(False)  # type: ignore[attr-defined]
        row = self.device_combo.findData(current)
        self.device_combo.setCurrentIndex(row if row >= 0 else 0)
        self.device_combo.blockSignals(False)

    def _update_availability(self, *_: Any) -> None:
        model = self.model_edit.text().strip()
        if self._pretrained_names is None:
            text = ("Whether pretrained weights for this model are on disk is not known until training starts; "
                    "nothing is downloaded. If they are missing, import a weights file or train from scratch.")
            colour = HINT_COLOUR
        elif model in self._pretrained_names:
            text, colour = f"Pretrained weights for {model} are available offline.", "#2e9e4f"
        else:
            text = (f"No pretrained weights for {model} on this computer (nothing is downloaded). "
                    "Import a weights file or train from scratch.")
            colour = WARNING_COLOUR
        self.availability.setText(text)
        self.availability.setStyleSheet(f"color: {colour};")
        self.availability.setVisible(self.pretrained_radio.isChecked())

    def import_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import weights file", "",
                                              "Weights (*.safetensors *.pth *.pt *.bin);;All files (*)")
        if path:
            self.import_weights_file(path)

    def import_weights_file(self, path: str) -> None:
        """Copy the file under the data dir (a job never depends on a file the user may move)."""
        def done(target: Path) -> None:
            self.weights_edit.setText(str(target))
            self.file_radio.setChecked(True)

        store = self.state.store

        def work(consent: bool) -> Path | ConsentRequired:
            try:
                return import_weights(store, path, consent=consent)
            except ConsentRequired as refusal:  # a question for the user, not a failure
                return refusal

        def answered(result: Path | ConsentRequired) -> None:
            if isinstance(result, Path):
                done(result)
            elif confirm_pickle_import(self, path):
                start(True)

        def start(consent: bool) -> None:
            run_task(lambda _st: work(consent), owner=self, title="Import weights", on_result=answered,
                     on_error=lambda info: self.banner.show_message(f"Could not import {path}: {info.message}"))

        start(False)

    # -- config <-> form --------------------------------------------------------------------------
    def _raw(self) -> tuple[dict[str, Any], dict[str, str]]:
        values, errors = self.form.raw_values()
        info = self.selected_dataset()
        data: dict[str, Any] = dict(values)
        data.update({
            "name": self.name_edit.text().strip() or None,
            "framework": self.framework_combo.currentText(),
            "task": self.task_combo.currentText(),
            "model": self.model_edit.text().strip(),
            "pretrained": self.pretrained_radio.isChecked(),
            "weights": (self.weights_edit.text().strip() or None) if self.file_radio.isChecked() else None,
            "device": self.device_combo.currentData() or "auto",
            "augmentation": self.augmentation.value(),
        })
        if self.augmentation.errors:
            errors["augmentation"] = "; ".join(f"{k}: {v}" for k, v in self.augmentation.errors.items())
        project = self._project_name()
        if project:
            data["project"] = project
        if info is not None:
            data["dataset"] = info.path
            data["dataset_format"] = info.format or "auto"
            if info.split_config:
                data["split"] = {k: v for k, v in info.split_config.items() if k in ("strategy", "ratio", "seed", "file")}
        else:
            errors["dataset"] = "choose a dataset (add one on the Datasets page)"
        if self.file_radio.isChecked() and not data["weights"]:
            errors["weights"] = "import a weights file or choose another starting point"
        if self.advanced.isChecked() and self.args_edit.toPlainText().strip():
            try:
                parsed = yaml.safe_load(self.args_edit.toPlainText())
            except yaml.YAMLError as exc:
                errors["framework_args"] = f"not valid YAML: {str(exc).splitlines()[0]}"
            else:
                if parsed is None:
                    data["framework_args"] = {}
                elif isinstance(parsed, dict):
                    data["framework_args"] = parsed
                else:
                    errors["framework_args"] = "must be a mapping of names to values (key: value lines)"
        return data, errors

    def _project_name(self) -> str | None:
        """The current project's name from the overview the app state holds (revalidate() runs on every
        keystroke: no store read here). Unknown yet: the queued job gets it from its project id."""
        overview = self.state.overview
        project = overview.project(self.state.project_id) if overview is not None else None
        return project.name if project is not None else None

    def revalidate(self, *_: Any) -> bool:
        data, errors = self._raw()
        if "dataset" not in data:
            data["dataset"] = "-"  # validated separately above
        try:
            JobConfig.model_validate({**defaults(), **{k: v for k, v in data.items() if k not in errors}})
        except ValidationError as exc:
            for item in exc.errors():
                key = str(item["loc"][0]) if item["loc"] else "config"
                errors.setdefault(key, item["msg"])
        self.errors = errors
        self.form.mark_errors(errors)
        self._mark(self.model_edit, errors.get("model"))
        self._mark(self.weights_edit, errors.get("weights"))
        self._mark(self.dataset_combo, errors.get("dataset"))
        self._mark(self.args_edit, errors.get("framework_args"))
        self.args_status.setText(f"<span style='color:{ERROR_COLOUR}'>{errors['framework_args']}</span>"
                                 if "framework_args" in errors else "Valid YAML mapping.")
        if errors:
            first = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in list(errors.items())[:3])
            self.validation.setText(f"<span style='color:{ERROR_COLOUR}'>Fix before starting — {first}</span>")
        else:
            self.validation.setText("Ready to start. The job is queued and runs in the background.")
        self.start_button.setEnabled(not errors)
        self._update_dataset_summary()
        self._update_preview(data, errors)
        return not errors

    def _update_preview(self, data: dict[str, Any], errors: dict[str, str]) -> None:
        """The augmentation preview follows the dataset, framework, task, image size and augmentation."""
        info = self.selected_dataset()
        blocking = [key for key in ("dataset", "task", "image_size", "augmentation", "framework") if key in errors]
        if info is None or blocking:
            reason = f"No preview until {blocking[0].replace('_', ' ')} is fixed." if blocking and info else ""
            self.preview.set_request(None, reason)
            return
        self.preview.set_request({key: data.get(key) for key in ("dataset", "dataset_format", "framework", "task",
                                                                  "image_size")}
                                 | {"split": data.get("split") or {}, "preset": data["augmentation"]["preset"],
                                    "options": data["augmentation"]["options"]})

    @staticmethod
    def _mark(widget: QWidget, message: str | None) -> None:
        widget.setStyleSheet(f"border: 2px solid {ERROR_COLOUR};" if message else "")
        if message:
            widget.setToolTip(f"⚠ {message}")

    def current_config(self) -> JobConfig:
        """The configurator's config, validated exactly as ``vision-platform train`` validates a YAML."""
        data, errors = self._raw()
        if errors:
            raise ConfigError("\n".join(f"{k}: {v}" for k, v in errors.items()))
        return config_from_dict(data, source="configurator")

    def _apply_values(self, values: dict[str, Any]) -> None:
        self.form.set_values(values)
        framework = str(values.get("framework") or defaults()["framework"])
        self.augmentation.set_value(framework, values.get("augmentation"))
        if self.framework_combo.findText(framework) < 0:
            self.framework_combo.addItem(framework)  # the catalog will say whether it is offered
        self.framework_combo.setCurrentText(framework)
        self.task_combo.setCurrentText(str(values.get("task") or "classify"))
        self.model_edit.setText(str(values.get("model") or ""))
        self.name_edit.setText(str(values.get("name") or ""))
        if values.get("weights"):
            self.weights_edit.setText(str(values["weights"]))
            self.file_radio.setChecked(True)
        elif values.get("pretrained"):
            self.pretrained_radio.setChecked(True)
        else:
            self.scratch_radio.setChecked(True)
        device = str(values.get("device") or "auto")
        row = self.device_combo.findData(device)
        if row < 0:
            self.device_combo.addItem(device, device)
            row = self.device_combo.count() - 1
        self.device_combo.setCurrentIndex(row)
        args = values.get("framework_args") or {}
        self.advanced.setChecked(bool(args))
        self.args_edit.setPlainText(yaml.safe_dump(args, sort_keys=False) if args else "")

    def apply_config(self, config: JobConfig) -> None:
        """Fill the form from a config (preset or cloned job); its dataset is selected or registered."""
        values = config.model_dump(mode="json")
        self._apply_values(values)
        self._select_dataset_path(config)
        self.revalidate()

    def _select_dataset_path(self, config: JobConfig) -> None:
        for row in range(self.dataset_combo.count()):
            info = self.dataset_combo.itemData(row)
            if info is not None and info.path == config.dataset:
                self.dataset_combo.setCurrentIndex(row)
                # The preset's split wins for this job (the dataset's saved split is left as it is).
                info.split_config = config.split.model_dump(exclude_none=True)
                return
        self.banner.show_message(
            f"The preset's dataset {config.dataset} is not in this project: open it on the Datasets page first.",
            level="warning")

    # -- presets ----------------------------------------------------------------------------------
    def save_preset_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save preset", "job.yaml", "Job config (*.yaml *.yml)")
        if path:
            self.save_preset(path)

    def save_preset(self, path: str) -> bool:
        try:
            config = self.current_config()
        except ConfigError as exc:
            self.banner.show_message(f"The configuration is not complete yet: {exc}", level="warning")
            return False
        save_config(config, path)
        self.banner.show_message(f"Saved preset to {path}. Run it headless with: vision-platform train {path}",
                                 level="info")
        return True

    def load_preset_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load preset", "", "Job config (*.yaml *.yml)")
        if path:
            self.load_preset(path)

    def load_preset(self, path: str) -> bool:
        try:
            config = load_config(path)
        except ConfigError as exc:
            self.banner.show_message(f"This preset cannot be used: {exc}")
            return False
        self.banner.clear()
        self.apply_config(config)
        return True

    def clone_from_job_dialog(self) -> None:
        """Pick one of the project's jobs (listed in a worker) and fill the form with its config."""
        store, project_id = self.state.store, self.state.project_id
        run_task(lambda _st: job_service.list_jobs(store, project_id), owner=self, title="List jobs",
                 on_result=self._choose_job_to_clone,
                 on_error=lambda info: self.banner.show_message(f"Could not list the jobs: {info.message}"))

    def _choose_job_to_clone(self, jobs: list[job_service.JobSummary]) -> None:
        if not jobs:
            self.banner.show_message("No jobs in this project yet to clone from.", level="info")
            return
        labels = [f"#{job.id}  {job.name}  ({job.status})" for job in jobs]
        choice, ok = QInputDialog.getItem(self, "Clone from job", "Job:", labels, 0, False)
        if not ok:
            return
        store, job_id = self.state.store, jobs[labels.index(choice)].id
        run_task(lambda _st: job_service.job_config(store, job_id), owner=self, title="Clone job",
                 on_result=self.apply_config,
                 on_error=lambda info: self.banner.show_message(f"That job's configuration cannot be reused: "
                                                                f"{info.message}"))

    # -- start ------------------------------------------------------------------------------------
    def start(self) -> None:
        try:
            config = self.current_config()
        except ConfigError as exc:
            self.banner.show_message(f"Fix the configuration first: {exc}", level="warning")
            return
        info = self.selected_dataset()
        loaded = self.state.dataset
        known_findings = loaded.findings if loaded is not None and info is not None and loaded.info.id == info.id else None
        catalog = catalog_from_payloads(self.helpers.cached_catalog() or {})
        listed = self.helpers.cached_models(config.framework)
        if listed is not None:
            catalog = {**catalog, config.framework: FrameworkInfo.from_payload(listed)}
        self.start_button.setEnabled(False)
        self.validation.setText("Checking the dataset, weights and disk space…")
        run_task(lambda _st: preflight(config, known_findings, catalog), owner=self, title="Preflight",
                 on_result=lambda problems: self._after_preflight(config, info, problems),
                 on_error=self._on_preflight_error)

    def _on_preflight_error(self, info: ErrorInfo) -> None:
        self.revalidate()
        self.banner.show_message(f"The checks before starting failed: {info.message}", detail=info.detail)

    def _after_preflight(self, config: JobConfig, info: dataset_store.DatasetInfo | None,
                         problems: list[tuple[str, str]]) -> None:
        self.revalidate()
        if not problems:
            self.queue_job(config, info)
            return
        errors = [text for level, text in problems if level == "error"]
        box = QMessageBox(self)
        box.setWindowTitle("Before starting")
        box.setIcon(QMessageBox.Icon.Critical if errors else QMessageBox.Icon.Warning)
        box.setText("This job cannot start yet:" if errors else "Check these before starting:")
        box.setInformativeText("\n".join(f"• {text}" for _, text in problems))
        if errors:
            box.setStandardButtons(QMessageBox.StandardButton.Close)
        else:
            start_anyway = box.addButton("Start anyway", QMessageBox.ButtonRole.AcceptRole)
            box.addButton(QMessageBox.StandardButton.Cancel)
            box.accepted.connect(lambda: self.queue_job(config, info))
            box.setDefaultButton(start_anyway)
        self._preflight_box = box
        box.open()

    def queue_job(self, config: JobConfig, info: dataset_store.DatasetInfo | None) -> None:
        """Queue the job (in a worker); the Jobs page then shows it."""
        store, project_id = self.state.store, self.state.project_id
        dataset_id = info.id if info else None

        def queued(_job_id: int) -> None:
            self.state.jobs_change.emit()
            self.state.page_request.emit("jobs")

        run_task(lambda _st: job_service.queue_job(store, config, project_id=project_id, dataset_id=dataset_id),
                 owner=self, title="Queue job", on_result=queued,
                 on_error=lambda info: self.banner.show_message(f"The job could not be queued: {info.message}"))


def preflight(config: JobConfig, findings: list[Any] | None,
              catalog: dict[str, FrameworkInfo] | None = None) -> list[tuple[str, str]]:
    """Problems that would make the job fail or waste time, as (level, sentence). Runs in a worker.

    The checks are ``core.jobs.preflight`` (the same ones ``vision-platform train`` runs), summarised
    for a dialog: a dataset with 3,000 unreadable files gives one line, not 3,000. ``findings`` (the
    health check already shown on the Datasets page) is accepted for callers that have it but the
    shared checks re-read the dataset, so the CLI and the GUI can never disagree.
    """
    from core.jobs.preflight import preflight as shared_preflight

    problems: list[tuple[str, str]] = []
    file_findings: list[str] = []
    for problem in shared_preflight(config, catalog=catalog or None):
        # Per-file findings come as "severity: path: message"; everything else is a sentence.
        if problem.message.startswith(("error: ", "warning: ", "info: ")):
            file_findings.append(problem.message)
        else:
            problems.append((problem.severity, problem.message))
    if file_findings:
        sample = "\n   ".join(file_findings[:3])
        more = f"\n   … and {len(file_findings) - 3} more (see the dataset's Health check)" if len(file_findings) > 3 else ""
        problems.append(("warning", f"The dataset check found {len(file_findings)} problem(s); the files concerned "
                                    f"are skipped:\n   {sample}{more}"))
    return problems
