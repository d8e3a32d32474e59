"""Settings: storage (R2/S3 + keys in the OS keyring), tracking, offline mode, data folder, devices, queue."""

from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
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

from app.look import ERROR_COLOUR, WARNING_COLOUR
from app.models.app_state import AppState
from app.workers import ErrorInfo, TaskHandle, run_task
from core import paths
from core.settings import Settings

DATA_DIR_KEY = "data_dir"


def _credentials_module() -> Any:
    try:
        from core.storage import credentials  # written by the storage engineer; optional here
    except ImportError:
        return None
    return credentials


def test_connection(settings: Settings, access_key: str, secret: str) -> str:
    """Worker body: list one object of the bucket with these settings; returns a sentence or raises."""
    from core.storage.client import make_s3_client

    creds_module = _credentials_module()
    creds: Any = None
    if access_key and secret:
        creds = creds_module.Credentials(access_key_id=access_key, secret_access_key=secret, source="form")
    elif creds_module is not None:
        creds = creds_module.get_credentials()
    if creds is None:
        raise ValueError("no access key and secret: enter them above")
    client = make_s3_client(settings, creds)
    client.list_objects_v2(Bucket=settings.r2_bucket, MaxKeys=1)
    return f"Connected: bucket {settings.r2_bucket} is reachable with these keys."


class SettingsDialog(QDialog):
    def __init__(self, state: AppState, parent: QWidget | None = None, device_choices: list[tuple[str, str]] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(560)
        self.state = state
        settings = state.settings
        self.credentials = _credentials_module()

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
        self._load_credentials()

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
        general = QGroupBox("General")
        general_form = QFormLayout(general)
        general_form.addRow("MLflow tracking URI", self.mlflow_uri)
        general_form.addRow("", self.tracking)
        general_form.addRow("", self.offline)
        general_form.addRow("Data folder", data_row)
        note = QLabel("A new data folder is used after restarting the app.")
        note.setStyleSheet("color: palette(placeholder-text);")
        general_form.addRow("", note)
        general_form.addRow("Default device", self.device)
        general_form.addRow("Jobs at the same time", self.max_jobs)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(storage)
        layout.addWidget(general)
        layout.addWidget(buttons)
        self._test_task: TaskHandle | None = None
        self.saved_notice: str | None = None

    def _load_credentials(self) -> None:
        if self.credentials is None:
            self.keyring_notice.setText("Key storage is not available in this build: keys cannot be saved.")
            self.keyring_notice.setStyleSheet(f"color: {WARNING_COLOUR};")
            return
        notice = self.credentials.credentials_backend_notice()
        self.keyring_notice.setText(notice)
        # No keyring: the file fallback is a real compromise, so the notice stands out.
        no_keyring = notice.startswith("No system keyring")
        self.keyring_notice.setStyleSheet(f"color: {WARNING_COLOUR};" if no_keyring else
                                          "color: palette(placeholder-text);")
        try:
            creds = self.credentials.get_credentials()
        except Exception as exc:  # a locked keyring must not keep the dialog from opening
            self.keyring_notice.setText(f"The keyring could not be read: {exc}")
            return
        if creds is not None:
            self.access_key.setText(creds.access_key_id)
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
            sync_enabled=self.sync.isChecked(),
        )

    def run_test(self) -> None:
        try:
            import core.storage.client  # noqa: F401
        except ImportError:
            self._show_test("The storage module is not part of this build yet, so the connection cannot be tested.",
                            WARNING_COLOUR)
            return
        settings = self.settings_from_fields()
        access, secret = self.access_key.text().strip(), self.secret.text()
        self.test_button.setEnabled(False)
        self._show_test("Connecting…", "palette(placeholder-text)")
        self._test_task = run_task(
            lambda _st: test_connection(settings, access, secret), owner=self, title="Test connection",
            on_result=lambda text: self._show_test(text, "#2e9e4f"),
            on_error=lambda info: self._show_test(f"Connection failed: {info.message}", ERROR_COLOUR),
            on_finished=lambda: self.test_button.setEnabled(True),
        )

    def _show_test(self, text: str, colour: str) -> None:
        self.test_result.setText(text)
        self.test_result.setStyleSheet(f"color: {colour};")

    def accept(self) -> None:
        self.state.set_settings(self.settings_from_fields())
        QSettings().setValue(DATA_DIR_KEY, self.data_dir.text().strip())
        access, secret = self.access_key.text().strip(), self.secret.text()
        if self.credentials is not None and access and secret:
            try:
                self.saved_notice = self.credentials.save_credentials(access, secret)
            except Exception as exc:
                self._on_save_error(ErrorInfo("Save keys", str(exc), ""))
                return
        super().accept()

    def _on_save_error(self, info: ErrorInfo) -> None:
        self.keyring_notice.setText(f"The keys could not be saved: {info.message}")
        self.keyring_notice.setStyleSheet(f"color: {ERROR_COLOUR};")
