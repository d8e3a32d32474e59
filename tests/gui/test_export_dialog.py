"""The Export dialog (offscreen): formats listed (unavailable ones greyed with their reason), an ONNX export
of a tiny trained timm job run from the dialog, the parity numbers shown, the Export… hook on the
checkpoints panel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from core.config import config_from_dict
from core.jobs import store as job_store
from core.jobs.runner import JobRunner
from core.services.export import FormatChoice
from tests.helpers.datasets_gen import make_imagefolder

pytestmark = pytest.mark.slow  # a real (1 epoch, 32 px) training run and a real export


def _trained_job(store: Any, tmp_path: Path) -> int:
    dataset = make_imagefolder(tmp_path / "data", classes=("red", "green"), per_class=8, size=32)
    config = config_from_dict({"dataset": str(dataset), "model": "test_resnet", "epochs": 1, "batch_size": 8,
                               "image_size": 32, "seed": 1, "device": "cpu"})
    job_id = job_store.create_job(store, config)
    assert JobRunner(store).run(job_id) == "completed"
    return job_id


def test_dialog_exports_onnx_and_shows_the_parity_numbers(qtbot: Any, store: Any, tmp_path: Path) -> None:
    from app.widgets.export_dialog import ExportDialog

    job_id = _trained_job(store, tmp_path)
    dialog = ExportDialog(store, job_id)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.formats.count() == 2, timeout=120_000)
    assert [dialog.formats.item(i).text() for i in range(2)] == ["ONNX", "TorchScript"]
    dialog.select_format("onnx")
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.outcome is not None or "failed" in dialog.status.text(), timeout=300_000)
    assert dialog.outcome is not None, dialog.status.text()
    assert dialog.outcome.file.is_file() and dialog.outcome.verified
    assert dialog.status.text().startswith("Verified: ")
    text = dialog.report.toPlainText()
    assert "parity: verified on" in text and "top1_agreement: 1" in text and "model card:" in text


def test_unavailable_formats_are_greyed_with_the_missing_package(qtbot: Any, store: Any) -> None:
    from app.widgets.export_dialog import ExportDialog

    dialog = ExportDialog(store, 999)  # no such job: the formats read fails and says so
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: "failed" in dialog.status.text(), timeout=30_000)
    assert "no job with id 999" in dialog.status.text() and not dialog.export_button.isEnabled()
    from core.services.export import ExportSource

    source = ExportSource(Path("best.pt"), "ultralytics", "detect", "yolo11n")
    dialog._show_formats((source, [FormatChoice("onnx", "ONNX", True, None, True),
                                   FormatChoice("openvino", "OpenVINO", False,
                                                "needs the openvino package (not installed)", False)]))
    greyed = dialog.formats.item(1)
    assert greyed.text() == "OpenVINO — needs the openvino package (not installed)"
    assert not greyed.flags() & Qt.ItemFlag.ItemIsEnabled
    assert dialog.export_button.isEnabled()


def test_checkpoints_panel_has_the_export_hook(qtbot: Any, store: Any, tmp_path: Path) -> None:
    from app.widgets.checkpoints_panel import CheckpointsPanel

    job_id = _trained_job(store, tmp_path)
    panel = CheckpointsPanel(type("State", (), {"store": store})())
    qtbot.addWidget(panel)
    panel.set_job(job_id)
    qtbot.waitUntil(lambda: panel.export_button.isEnabled(), timeout=30_000)
    panel.export_button.click()
    assert panel.export_dialog.job_id == job_id and panel.export_dialog.isVisible()
    panel.export_dialog.reject()
