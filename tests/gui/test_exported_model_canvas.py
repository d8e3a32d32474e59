"""An exported ONNX detector on the inference canvas: the same boxes as its checkpoint, drawn in pixels.

Issue 14: "the ONNX file loads in the canvas and predicts the same top-1 / boxes as the checkpoint
(pixels checked on one overlay)". A yolo11n trained here (2 epochs, 64 px, CPU) is exported to ONNX
through the export service; the Inference page offers the export in its model list, loads it in the
same warm worker, and draws the boxes the checkpoint draws for the same image and sliders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtGui import QImage

from tests.gui.test_inference_canvas import drop
from tests.helpers.datasets_gen import make_dice_detection

pytestmark = pytest.mark.slow


def _boxes(page: Any, image: Path) -> list[tuple[str, tuple[float, ...], float]]:
    return sorted((b["label"], tuple(round(b[k], 1) for k in ("x1", "y1", "x2", "y2")), round(b["confidence"], 3))
                  for b in page.raw[image]["boxes"] if b["confidence"] >= 0.005)


def _show(page: Any, qtbot: Any, label_part: str, image: Path) -> None:
    page.refresh_models()
    qtbot.waitUntil(lambda: any(label_part in c.label for c in page.choices), timeout=30_000)
    choice = next(c for c in page.choices if label_part in c.label)
    page.load_model(choice)
    qtbot.waitUntil(lambda: page.loaded is not None or page.load_error is not None, timeout=120_000)
    assert page.load_error is None, page.load_error
    drop(page.canvas, [image])
    qtbot.waitUntil(lambda: image in page.raw and page.canvas.image_size == (64, 64), timeout=60_000)


def test_onnx_export_draws_the_checkpoints_boxes(window: Any, store: Any, qtbot: Any, tmp_path: Path) -> None:
    from app.models.projects import list_projects
    from core.config import config_from_dict
    from core.jobs import store as job_store
    from core.jobs.runner import JobRunner
    from core.services.export import export_model, job_source

    data = make_dice_detection(tmp_path / "shapes", n=20, size=64)
    config = config_from_dict({
        "framework": "ultralytics", "task": "detect", "model": "yolo11n.yaml", "dataset": str(data), "epochs": 2,
        "batch_size": 8, "image_size": 64, "workers": 0, "name": "tiny detector",
        "framework_args": {"mosaic": 0.0, "plots": False, "warmup_epochs": 0},
    })
    job_id = job_store.create_job(store, config, project_id=next(p.id for p in list_projects(store)))
    assert JobRunner(store).run(job_id) == "completed", job_store.get_job(store, job_id).error_message
    outcome = export_model(store, job_source(store, job_id), "onnx")
    assert Path(outcome.file).suffix == ".onnx"

    window.show_page("inference")
    page = window.pages["inference"]
    image = sorted(data.rglob("*.jpg"))[0]
    try:
        page.conf_slider.setValue(0)
        page.iou_slider.setValue(95)
        _show(page, qtbot, "— best", image)
        from_checkpoint = _boxes(page, image)
        assert from_checkpoint, "the checkpoint found no box at all: nothing to compare"
        _show(page, qtbot, "ONNX export", image)
        assert page.model.path == str(outcome.file)  # the exported file is what the worker now runs
        assert page.loaded["task"] == "detect" and page.loaded["class_names"] == ["circle", "square"]
        from_onnx = _boxes(page, image)
        assert [(label, box) for label, box, _score in from_onnx] == [(label, box) for label, box, _ in from_checkpoint]
        assert all(abs(a[2] - b[2]) <= 0.01 for a, b in zip(from_onnx, from_checkpoint, strict=True))

        # In the pixels: the top edge of the most confident box is drawn in its class colour.
        qtbot.waitUntil(lambda: len(page.canvas.box_items()) > 0, timeout=20_000)
        out = tmp_path / "onnx_overlay.png"
        assert page.save_overlay(out)
        overlay, raw = QImage(str(out)), QImage(str(image))
        best = max(page.raw[image]["boxes"], key=lambda b: b["confidence"])
        x, y = int((best["x1"] + best["x2"]) / 2), max(0, min(63, int(round(best["y1"]))))
        from app.look import class_colour

        drawn, expected, under = overlay.pixelColor(x, y), class_colour(best["class_id"]), raw.pixelColor(x, y)
        distance = abs(drawn.red() - expected.red()) + abs(drawn.green() - expected.green()) + abs(drawn.blue() - expected.blue())
        assert distance < 60 and drawn != under, (drawn.getRgb(), expected.getRgb(), under.getRgb())
    finally:
        page.shutdown()
