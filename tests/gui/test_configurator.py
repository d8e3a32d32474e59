"""Job configurator: schema form validation, presets round trip, start queues a job with that config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from core.config import load_config
from core.jobs.store import list_jobs
from tests.gui.conftest import wait_dataset
from tests.helpers.datasets_gen import make_dice_detection


@pytest.fixture
def configured(window: Any, qtbot: Any, tmp_path: Path) -> Any:
    dice = make_dice_detection(tmp_path / "dice", 12, size=64)
    window.datasets_page.add_dataset_path(str(dice))
    wait_dataset(qtbot, window)
    window.show_page("train")
    return window.train_page


def test_form_is_generated_from_schema_with_tooltips(window: Any) -> None:
    page = window.train_page
    assert {"epochs", "batch_size", "learning_rate", "optimizer", "image_size", "amp"} <= set(page.form.widgets)
    assert "passes over the training set" in page.form.widgets["epochs"].toolTip()
    assert "≥ 1" in page.form.widgets["epochs"].toolTip()
    # No dataset yet: Start is disabled and the dataset picker is marked.
    assert not page.start_button.isEnabled()
    assert "dataset" in page.errors


def test_detection_dataset_selects_ultralytics(configured: Any) -> None:
    page = configured
    assert page.selected_dataset() is not None
    assert page.framework_combo.currentText() == "ultralytics"
    assert page.task_combo.currentText() == "detect"
    assert page.picker.names.rowCount() == 4


def test_invalid_values_are_marked_and_block_start(configured: Any) -> None:
    page = configured
    assert page.start_button.isEnabled(), page.errors
    page.form.widgets["epochs"].setText("abc")
    assert not page.start_button.isEnabled()
    assert "epochs" in page.errors and "border" in page.form.widgets["epochs"].styleSheet()
    page.form.widgets["epochs"].setText("0")  # below ge=1
    assert "epochs" in page.errors
    page.form.widgets["epochs"].setText("5")
    page.form.widgets["learning_rate"].setText("20")  # above le=10
    assert "learning_rate" in page.errors and not page.start_button.isEnabled()
    page.form.widgets["learning_rate"].setText("0.01")
    page.advanced.setChecked(True)
    page.args_edit.setPlainText("mosaic: [unclosed")
    assert "framework_args" in page.errors and not page.start_button.isEnabled()
    page.args_edit.setPlainText("mosaic: 0.0\nfliplr: 0.5")
    assert page.start_button.isEnabled(), page.errors
    assert page.current_config().framework_args == {"mosaic": 0.0, "fliplr": 0.5}


def test_model_search_filters_the_list(configured: Any) -> None:
    page = configured
    page.picker.search.setText("seg")
    assert page.picker.proxy.rowCount() == 1
    page.picker.list.clicked.emit(page.picker.proxy.index(0, 0))
    assert page.model_edit.text() == "yolo11n-seg.yaml"


def test_preset_round_trip_and_start_queues_job(configured: Any, qtbot: Any, store: Any, tmp_path: Path) -> None:
    window_page = configured
    page = window_page
    page.model_edit.setText("yolo11n.yaml")
    page.form.widgets["epochs"].setText("3")
    page.form.widgets["batch_size"].setText("4")
    page.form.widgets["optimizer"].setCurrentText("sgd")
    page.name_edit.setText("dice run")
    preset = tmp_path / "preset.yaml"
    assert page.save_preset(str(preset))
    saved = load_config(preset)  # the file `vision-platform train` reads
    assert (saved.epochs, saved.batch_size, saved.optimizer, saved.model) == (3, 4, "sgd", "yolo11n.yaml")
    assert saved.dataset == page.selected_dataset().path

    page.form.widgets["epochs"].setText("99")
    page.form.widgets["optimizer"].setCurrentText("adam")
    assert page.load_preset(str(preset))
    assert page.form.widgets["epochs"].text() == "3"
    assert page.form.widgets["optimizer"].currentText() == "sgd"

    page.start()
    qtbot.waitUntil(lambda: len(list_jobs(store)) == 1, timeout=15_000)
    job = list_jobs(store)[0]
    stored = yaml.safe_load(job.config_yaml)
    assert stored == saved.model_dump(mode="json") | {"project": "Default"}
    assert job.status == "queued" and job.dataset_id == page.selected_dataset().id
    main = page.window()
    qtbot.waitUntil(lambda: main.current_page() == "jobs", timeout=5_000)  # once the worker queued it
    jobs_model = main.jobs_page.table.model()
    qtbot.waitUntil(lambda: jobs_model.rowCount() == 1, timeout=5_000)
    assert jobs_model.index(0, 0).data() == "dice run"  # the Name column


def test_clone_from_job_fills_the_form(configured: Any, qtbot: Any, store: Any, monkeypatch: Any) -> None:
    from PySide6.QtWidgets import QInputDialog

    page = configured
    page.form.widgets["epochs"].setText("4")
    page.queue_job(page.current_config(), page.selected_dataset())
    qtbot.waitUntil(lambda: len(list_jobs(store)) == 1, timeout=10_000)  # queued in a worker
    page.form.widgets["epochs"].setText("8")
    monkeypatch.setattr(QInputDialog, "getItem", lambda *a, **k: (a[3][0], True))
    page.clone_from_job_dialog()
    qtbot.waitUntil(lambda: page.form.widgets["epochs"].text() == "4", timeout=10_000)


def test_broken_preset_shows_message(configured: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: many\nunknown_key: 1\ndataset: x\n")
    assert not configured.load_preset(str(bad))
    assert "unknown key" in configured.banner.text()


def test_missing_weights_file_blocks_start_in_preflight(configured: Any, qtbot: Any, store: Any) -> None:
    page = configured
    page.file_radio.setChecked(True)
    page.weights_edit.setText("/nonexistent/weights.pt")
    page.start()
    qtbot.waitUntil(lambda: page._preflight_box is not None and page._preflight_box.isVisible(), timeout=15_000)
    assert "weights file not found" in page._preflight_box.informativeText()
    page._preflight_box.reject()
    assert list_jobs(store) == []
