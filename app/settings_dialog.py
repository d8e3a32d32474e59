"""Settings: storage (R2/S3 + keys in the OS keyring), tracking, offline mode, data folder, devices, queue."""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.look import ERROR_COLOUR, HINT_COLOUR, HINT_STYLE, WARNING_COLOUR
from app.models.app_state import AppState
from app.workers import TaskHandle, run_task
from core import paths
from core.services import ServiceError
from core.services import settings as settings_service
from core.services.settings import CredentialsStatus
from core.settings import AUTO_MEMORY_SHARE, Settings, total_memory_mb

DATA_DIR_KEY = "data_dir"
GB_IN_MB = 1024
NO_KEYRING_PREFIX = "No system keyring"


class SettingsDialog(QDialog):
    def __init__(self, state: AppState, parent: QWidget | None = None, device_choices: list[tuple[str, str]] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(560)
        self.state = state
        settings = state.settings

        # Storage
        self.endpoint = QLineEdit(settings.r2_endpoint_url)
        self.endpoint.setPlaceholderText("https://<account>.r2.cloudflarestorage.com")
        self.bucket = QLineEdit(settings.r2_bucket)
        self.access_key = QLineEdit()
        self.secret = QLineEdit()
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.keyring_notice = QLabel()
        self.keyring_notice.setWordWrap(True)
        self.sync = QCheckBox("Upload checkpoints to storage when keys are set")
        self.sync.setChecked(settings.sync_enabled)
        self.test_button = QPushButton("Test connection")
        self.test_button.clicked.connect(self.run_test)
        self.test_result = QLabel()
        self.test_result.setWordWrap(True)
        storage = QGroupBox("Storage (Cloudflare R2 / S3)")
        storage_form = QFormLayout(storage)
        storage_form.addRow("Endpoint URL", self.endpoint)
        storage_form.addRow("Bucket", self.bucket)
        storage_form.addRow("Access key", self.access_key)
        storage_form.addRow("Secret", self.secret)
        storage_form.addRow("", self.keyring_notice)
        storage_form.addRow("", self.sync)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button)
        test_row.addWidget(self.test_result, 1)
        storage_form.addRow("", test_row)

        # Tracking and behaviour
        self.mlflow_uri = QLineEdit(settings.mlflow_tracking_uri)
        self.mlflow_uri.setPlaceholderText(f"empty: a local store in {paths.data_dir()}")
        self.tracking = QCheckBox("Record runs in MLflow")
        self.tracking.setChecked(settings.tracking_enabled)
        self.offline = QCheckBox("Offline mode: never download weights or datasets")
        self.offline.setChecked(settings.offline_mode)
        self.data_dir = QLineEdit(str(QSettings().value(DATA_DIR_KEY, "") or paths.data_dir()))
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._choose_data_dir)
        data_row = QHBoxLayout()
        data_row.addWidget(self.data_dir, 1)
        data_row.addWidget(browse)
        self.device = QComboBox()
        for label, value in device_choices or [("Automatic (first GPU, else CPU)", "auto"), ("CPU", "cpu")]:
            self.device.addItem(label, value)
        row = self.device.findData(settings.default_device)
        if row < 0:
            self.device.addItem(settings.default_device, settings.default_device)
            row = self.device.count() - 1
        self.device.setCurrentIndex(row)
        self.max_jobs = QSpinBox()
        self.max_jobs.setRange(1, 16)
        self.max_jobs.setValue(settings.max_concurrent_jobs)
        self.max_jobs.setToolTip("Jobs that train at the same time; more than one only helps with several GPUs")
        self.memory_budget = memory_budget_field(settings.memory_budget_mb)
        self._shown_budget = (settings.memory_budget_mb, self.memory_budget.value())  # kept exact if untouched
        general = QGroupBox("General")
        general_form = QFormLayout(general)
        general_form.addRow("MLflow tracking URI", self.mlflow_uri)
        general_form.addRow("", self.tracking)
        general_form.addRow("", self.offline)
        general_form.addRow("Data folder", data_row)
        note = QLabel("A new data folder is used after restarting the app.")
        note.setStyleSheet(HINT_STYLE)
        general_form.addRow("", note)
        general_form.addRow("Default device", self.device)
        general_form.addRow("Jobs at the same time", self.max_jobs)
        general_form.addRow("Memory for training images", self.memory_budget)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        self.save_button = buttons.button(QDialogButtonBox.StandardButton.Save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(storage)
        layout.addWidget(general)
        layout.addWidget(buttons)
        self.save_error = QLabel()
        self.save_error.setWordWrap(True)
        self.save_error.setStyleSheet(f"color: {ERROR_COLOUR};")
        self.save_error.hide()
        layout.insertWidget(layout.count() - 1, self.save_error)
        self._test_task: TaskHandle | None = None
        self._credentials_task: TaskHandle | None = None
        self._save_task: TaskHandle | None = None
        self.saved_notice: str | None = None
        self._load_credentials()

    def _load_credentials(self) -> None:
        """Where keys are kept, and the saved access key, read in a worker (a keyring may be slow)."""
        self.keyring_notice.setText("Looking for saved keys…")
        self.keyring_notice.setStyleSheet(HINT_STYLE)
        self._credentials_task = run_task(lambda _st: settings_service.credentials_status(), owner=self,
                                          title="Read storage keys", on_result=self._show_credentials)

    def _show_credentials(self, status: CredentialsStatus) -> None:
        self.keyring_notice.setText(status.backend_notice)
        # No keyring: the file fallback is a real compromise, so the notice stands out.
        no_keyring = status.backend_notice.startswith(NO_KEYRING_PREFIX)
        self.keyring_notice.setStyleSheet(f"color: {WARNING_COLOUR};" if no_keyring else HINT_STYLE)
        if status.access_key_id and not self.access_key.text():
            self.access_key.setText(status.access_key_id)
            self.secret.setPlaceholderText("stored (leave empty to keep)")

    def _choose_data_dir(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Data folder", self.data_dir.text())
        if path:
            self.data_dir.setText(path)

    def settings_from_fields(self) -> Settings:
        return dataclasses.replace(
            self.state.settings,
            r2_endpoint_url=self.endpoint.text().strip(),
            r2_bucket=self.bucket.text().strip(),
            mlflow_tracking_uri=self.mlflow_uri.text().strip(),
            tracking_enabled=self.tracking.isChecked(),
            offline_mode=self.offline.isChecked(),
            default_device=str(self.device.currentData()),
            max_concurrent_jobs=self.max_jobs.value(),
            memory_budget_mb=self._memory_budget_mb(),
            sync_enabled=self.sync.isChecked(),
        )

    def _memory_budget_mb(self) -> int:
        stored, shown = self._shown_budget
        value = self.memory_budget.value()
        return stored if value == shown else round(value * GB_IN_MB)

    def run_test(self) -> None:
        settings = self.settings_from_fields()
        access, secret = self.access_key.text().strip(), self.secret.text()
        self.test_button.setEnabled(False)
        self._show_test("Connecting…", HINT_COLOUR)
        self._test_task = run_task(
            lambda _st: settings_service.check_connection(settings, access, secret), owner=self,
            title="Test connection",
            on_result=lambda text: self._show_test(text, "#2e9e4f"),
            on_error=lambda info: self._show_test(f"Connection failed: {info.message}", ERROR_COLOUR),
            on_finished=self._enable_test_button,
        )

    def _enable_test_button(self) -> None:
        self.test_button.setEnabled(True)

    def _show_test(self, text: str, colour: str) -> None:
        self.test_result.setText(text)
        self.test_result.setStyleSheet(f"color: {colour};")

    def accept(self) -> None:
        """Save in a worker (the database, the keyring or key file); the dialog closes once saved."""
        if self._save_task is not None and not self._save_task.done:
            return
        settings, store = self.settings_from_fields(), self.state.store
        access, secret = self.access_key.text().strip(), self.secret.text()

        def save(_st: object) -> tuple[Settings, str | None, str | None]:
            saved = settings_service.save_settings(store, settings)  # a refused value: nothing is saved
            try:
                notice = settings_service.set_credentials(access, secret) if access and secret else None
            except ServiceError as exc:  # the settings are saved already: the pages must still see them
                return saved, None, str(exc)
            return saved, notice, None

        self.save_error.hide()
        self.save_button.setEnabled(False)
        self._save_task = run_task(save, owner=self, title="Save settings", on_result=self._on_saved,
                                   on_error=lambda info: self._on_save_error(info.message),
                                   on_finished=lambda: self.save_button.setEnabled(True))

    def _on_saved(self, answer: tuple[Settings, str | None, str | None]) -> None:
        saved, self.saved_notice, keys_problem = answer
        self.state.set_settings(saved)
        if keys_problem is not None:
            self._on_save_error(keys_problem)
            return
        QSettings().setValue(DATA_DIR_KEY, self.data_dir.text().strip())
        super().accept()

    def _on_save_error(self, message: str) -> None:
        self.save_error.setText(f"Not saved: {message}")
        self.save_error.show()


def memory_budget_field(budget_mb: int) -> QDoubleSpinBox:
    """The memory budget in GB; 0 shows as automatic (a share of the memory free when a job starts)."""
    field = QDoubleSpinBox()
    field.setDecimals(1)
    field.setSingleStep(1.0)
    field.setRange(0.0, round(total_memory_mb() / GB_IN_MB, 1))
    field.setSuffix(" GB")
    field.setSpecialValueText(f"Automatic ({AUTO_MEMORY_SHARE:.0%} of the free memory)")
    field.setValue(budget_mb / GB_IN_MB)
    field.setToolTip("Decoded training images are kept in memory up to this size, so an epoch reads no files. "
                     "A larger dataset is read from disk while it trains (by the job's loader workers).")
    return field
