"""Hugging Face transformers through the app, as a user drives it: a dataset dropped on the window, the
Train page set to transformers with a from-scratch family (its sizes offered as framework arguments),
the job queued and run by the window's real job queue, its curves on the Jobs page, a classifier's
confusion matrix under Results, and a segmentation model's class mask on the inference canvas after a
real drop (the overlay's pixels checked against the mask the model returned).

Tiny on purpose: 2 layers of width 32, 32-64 px generated images, 2 epochs, CPU. A worker is held at a
known batch (``tests/helpers/holds.py``) to look at the charts while the job runs; everything else waits
on what the widgets hold (``qtbot.waitUntil``), never on time.
"""

from __future__ import annotations

import base64
import io
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image, ImageDraw
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage

from tests.gui.conftest import drop_path, wait_dataset
from tests.helpers.datasets_gen import labelme_json, labelme_shape, make_imagefolder
from tests.helpers.holds import Holds

TINY_SIZES = {"layers": 2, "hidden_size": 32}
TRAIN_TIMEOUT_MS = 600_000  # a broken build's bound, never how long a run takes




def make_fields(root: Path, n: int = 16, size: int = 64, seed: int = 0) -> Path:
    """DICE segmentation set: a large green "field" polygon (a third to two thirds of the picture) on a
    grey background, so even a 2-epoch model predicts the class somewhere. PNG: no JPEG noise."""
    rng = random.Random(seed)
    for index in range(n):
        picture = Image.new("RGB", (size, size), (120, 120, 120))
        x0, y0 = rng.randint(0, size // 3), rng.randint(0, size // 3)
        x1, y1 = rng.randint(2 * size // 3, size - 1), rng.randint(2 * size // 3, size - 1)
        outline = [[x0, y0], [x1, y0 + rng.randint(0, 6)], [x1, y1], [x0 + rng.randint(0, 6), y1]]
        ImageDraw.Draw(picture).polygon([tuple(p) for p in outline], fill=(40, 170 + rng.randint(-20, 20), 60))
        stem = f"field_{index:03d}"
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        picture.save(root / "images" / f"{stem}.png")
        shapes = [labelme_shape("field", "polygon", [[float(x), float(y)] for x, y in outline])]
        (root / "annotations" / f"{stem}.json").write_text(
            json.dumps(labelme_json(f"../images/{stem}.png", size, size, shapes)), encoding="utf-8")
    return root


def configure_transformers(window: Any, qtbot: Any, task: str, family: str, **values: Any) -> Any:
    """The Train page set as a user would: framework, the task's from-scratch family picked in the list
    (which offers the family's sizes as framework arguments), tiny sizes, CPU."""
    page = window.train_page
    window.show_page("train")
    qtbot.waitUntil(lambda: page.framework_combo.findText("transformers") >= 0, timeout=60_000)
    page.framework_combo.setCurrentText("transformers")
    qtbot.waitUntil(lambda: page.task_combo.findText(task) >= 0 and family in page.picker.names.stringList(),
                    timeout=TRAIN_TIMEOUT_MS)  # the real model-list helper lists the framework
    page.task_combo.setCurrentText(task)
    page.picker.search.setText(family)
    qtbot.waitUntil(lambda: page.picker.proxy.rowCount() == 1, timeout=5_000)
    index = page.picker.proxy.index(0, 0)
    page.picker.list.scrollTo(index)
    qtbot.mouseClick(page.picker.list.viewport(), Qt.MouseButton.LeftButton,
                     pos=page.picker.list.visualRect(index).center())
    assert page.model_edit.text() == family
    offered = yaml.safe_load(page.args_edit.toPlainText())
    assert page.advanced.isChecked() and {"layers", "hidden_size"} <= set(offered)  # the declared sizes
    page.args_edit.setPlainText(yaml.safe_dump({**offered, **TINY_SIZES}, sort_keys=False))
    assert page.scratch_radio.isChecked()
    page.device_combo.setCurrentIndex(page.device_combo.findData("cpu"))
    page.form.set_values({"epochs": 2, "learning_rate": 0.003, "seed": 1, **values})
    qtbot.waitUntil(page.start_button.isEnabled, timeout=20_000)
    return page


def start_and_wait_queued(window: Any, qtbot: Any) -> int:
    from core.services.jobs import list_jobs

    page = window.train_page
    qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.current_page() == "jobs" or (page._preflight_box is not None
                                                                and page._preflight_box.isVisible()),
                    timeout=60_000)
    box = page._preflight_box
    assert box is None or not box.isVisible(), f"preflight objected: {box.informativeText()}"
    [job] = list_jobs(window.state.store)
    assert job.framework == "transformers"
    return int(job.id)


def status(window: Any, job_id: int) -> str:
    row = window.jobs_page.model.job(job_id)
    return row.status if row is not None else ""


def test_the_drop_hint_is_never_drawn_over_an_image(qtbot: Any) -> None:
    """The canvas's "Drop images…" invitation belongs to an empty canvas: an image clears it, and asking
    for it while an image is shown does not bring it back; other messages still show over an image."""
    from app.widgets.inference_canvas import DROP_HINT, InferenceCanvas

    canvas = InferenceCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(400, 300)
    canvas.show()
    assert canvas.message_text() == DROP_HINT
    image = QImage(40, 20, QImage.Format.Format_RGB32)
    image.fill(QColor(0, 0, 0))
    canvas.set_image(image)
    assert canvas.message.isHidden() and canvas.message_text() == ""
    canvas.show_message(DROP_HINT, level="hint")
    assert canvas.message.isHidden()
    canvas.show_message("Running the model…", level="hint")
    assert canvas.message_text() == "Running the model…"
    canvas.clear_image()
    canvas.show_message(DROP_HINT, level="hint")
    assert canvas.message_text() == DROP_HINT


@pytest.mark.slow
def test_transformers_classifier_from_the_train_page_charts_and_confusion_matrix(
        window: Any, queue: Any, qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shots_dir: Path) -> None:
    data = make_imagefolder(tmp_path / "colours", classes=("red", "green", "blue"), per_class=12, size=32)
    drop_path(window, data)
    assert wait_dataset(qtbot, window) is not None
    configure_transformers(window, qtbot, "classify", "vit-scratch", image_size=32, batch_size=8)
    holds = Holds(tmp_path / "holds", 2)  # step 1's loss is logged once step 2 runs; held there, it is running
    monkeypatch.setenv("VP_FAULT", holds.fault_spec)
    job_id = start_and_wait_queued(window, qtbot)

    jobs = window.jobs_page
    qtbot.waitUntil(lambda: jobs.charts is not None and jobs.model.job(job_id) is not None, timeout=30_000)
    jobs.select_job(job_id)

    def step_points() -> int:
        return sum(jobs.charts.curve_points("loss_step").values())

    qtbot.waitUntil(lambda: holds.is_held(2) and step_points() >= 1, timeout=TRAIN_TIMEOUT_MS)
    assert status(window, job_id) == "running"  # the live curve has points while the job runs
    holds.release(2)
    qtbot.waitUntil(lambda: status(window, job_id) in ("completed", "failed", "cancelled"), timeout=TRAIN_TIMEOUT_MS)
    assert status(window, job_id) == "completed", jobs.log.plain_text()[-2000:]
    qtbot.waitUntil(lambda: jobs.charts.curve_points("metrics_epoch").get("val/accuracy") == 2
                    and not jobs.charts.data.dirty, timeout=30_000)
    assert jobs.charts.curve_points("loss_step").get("train/loss", 0) >= 2 and jobs.charts.curve_points("lr")
    window.grab().save(str(shots_dir / "transformers_jobs_charts.png"))

    results = jobs.results
    jobs.tabs.setCurrentWidget(results)
    qtbot.waitUntil(lambda: results.confusion is not None and results.confusion.predictions is not None,
                    timeout=30_000)
    assert results.titles()[0].startswith("Confusion matrix")
    predictions = results.confusion.predictions
    assert predictions.class_names == ["blue", "green", "red"]
    matrix = predictions.confusion()
    assert matrix.shape == (3, 3) and int(matrix.sum()) == len(predictions.items) > 0


@pytest.mark.slow
def test_transformers_segmentation_from_the_train_page_shows_its_mask_on_the_canvas(
        window: Any, queue: Any, qtbot: Any, tmp_path: Path, shots_dir: Path) -> None:
    from app.look import class_colour
    from app.widgets.inference_canvas import CLASS_MASK_ALPHA

    data = make_fields(tmp_path / "fields")
    drop_path(window, data)
    dataset = wait_dataset(qtbot, window)
    assert dataset is not None and dataset.index.task_hint == "segment"
    configure_transformers(window, qtbot, "segment", "segformer-scratch", image_size=64, batch_size=4)
    job_id = start_and_wait_queued(window, qtbot)
    jobs = window.jobs_page
    qtbot.waitUntil(lambda: jobs.charts is not None and jobs.model.job(job_id) is not None, timeout=30_000)
    jobs.select_job(job_id)
    qtbot.waitUntil(lambda: status(window, job_id) in ("completed", "failed", "cancelled"), timeout=TRAIN_TIMEOUT_MS)
    assert status(window, job_id) == "completed", jobs.log.plain_text()[-2000:]
    qtbot.waitUntil(lambda: jobs.charts.curve_points("metrics_epoch").get("val/miou") == 2, timeout=30_000)

    # On the Inference page the user picks the job's best checkpoint; an image dropped on the canvas is
    # predicted. (Picked explicitly: the page lists the model while hidden, when the job ends.)
    window.show_page("inference")
    inference = window.pages["inference"]
    qtbot.waitUntil(lambda: any(c.job_id == job_id for c in inference.choices), timeout=30_000)
    best = next(c for c in inference.choices if c.job_id == job_id and "— best" in c.label)
    row = inference.model_box.findData(best.key)
    inference.model_box.setCurrentIndex(row)
    inference.model_box.activated.emit(row)

    def loaded() -> None:
        assert inference.loaded is not None and inference.model == best, inference.model_status.text()

    qtbot.waitUntil(loaded, timeout=120_000)  # the first load starts the inference worker
    picture = sorted((data / "images").iterdir())[0]
    drop_path(inference.canvas.viewport(), picture)
    qtbot.waitUntil(lambda: inference.current == picture and picture in inference.raw, timeout=120_000)
    result = inference.raw[picture]
    assert result["task"] == "segment" and result["class_mask"]
    canvas = inference.canvas
    qtbot.waitUntil(lambda: canvas.mask_item is not None and bool(canvas.legend_text()), timeout=10_000)
    assert canvas.message.isHidden()  # no "Drop images…" behind the legend once the picture is shown
    assert [line.split(":")[0] for line in canvas.legend_text()] == [
        area["label"] for area in result["class_mask"]["areas"]]

    # Overlay pixels: the picture where the mask says background, blended with the class colour elsewhere.
    mask = np.array(Image.open(io.BytesIO(base64.b64decode(result["class_mask"]["png_base64"]))))
    source = np.array(Image.open(picture).convert("RGB")).astype(int)
    rendered = canvas.render_overlay()
    assert (rendered.width(), rendered.height()) == (64, 64) and mask.shape == (64, 64)
    assert (mask > 0).any(), "the model predicted no field pixel: nothing to check on the overlay"
    alpha = CLASS_MASK_ALPHA / 255
    for y in range(0, 64, 3):
        for x in range(0, 64, 3):
            pixel = rendered.pixelColor(x, y)
            want = source[y, x].astype(float)
            if mask[y, x]:
                colour = QColor(class_colour(int(mask[y, x])))
                want = want * (1 - alpha) + np.array([colour.red(), colour.green(), colour.blue()]) * alpha
            got = np.array([pixel.red(), pixel.green(), pixel.blue()])
            assert np.abs(got - want).max() <= 4, ((x, y), int(mask[y, x]), got.tolist(), want.tolist())
    window.grab().save(str(shots_dir / "transformers_segmentation_canvas.png"))
