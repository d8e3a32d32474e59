"""The Results tab's interactive confusion matrix: cells list their validation images, an image
shows its prediction against the ground truth, and PR curves are drawn per class."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.config import config_from_dict
from core.db.models import Artifact
from core.jobs import store as job_store
from tests.helpers.datasets_gen import make_imagefolder


def test_confusion_matrix_cells_list_images_and_show_prediction(window: Any, store: Any, qtbot: Any,
                                                                tmp_path: Path, shots_dir: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    data = make_imagefolder(tmp_path / "data", classes=("cat", "dog"), per_class=3, size=32)
    cats = sorted((data / "cat").iterdir())
    dogs = sorted((data / "dog").iterdir())
    items = [
        {"path": str(cats[0]), "true": 0, "pred": 0, "scores": [0.9, 0.1]},
        {"path": str(cats[1]), "true": 0, "pred": 1, "scores": [0.35, 0.65]},
        {"path": str(dogs[0]), "true": 1, "pred": 1, "scores": [0.2, 0.8]},
        {"path": str(dogs[1]), "true": 1, "pred": 1, "scores": [0.1, 0.9]},
    ]
    job_id = job_store.create_job(store, config_from_dict({"dataset": str(data)}))
    predictions = Path(job_store.get_job(store, job_id).output_dir or "") / "val_predictions.json"
    predictions.write_text(json.dumps({"format": 1, "epoch": 2, "class_names": ["cat", "dog"], "items": items}))
    with store.write() as session:
        session.add(Artifact(job_id=job_id, kind="val_predictions", path=str(predictions)))

    results = window.pages["jobs"].results
    results.set_job(job_id)
    qtbot.waitUntil(lambda: results.confusion is not None and results.confusion.predictions is not None,
                    timeout=20_000)
    view = results.confusion
    assert results.titles()[0].startswith("Confusion matrix")
    assert [[view.cell_count(r, c) for c in range(2)] for r in range(2)] == [[1, 1], [0, 2]]
    assert "3 of 4 validation images right" in view.title.text()

    view.show_cell(0, 1)  # true cat, predicted dog
    assert view.images.count() == 1 and view.images.item(0).text() == cats[1].name
    assert "predicted dog (65%) · ground truth cat" in view.verdict.text()
    assert view.preview.pixmap() is not None and not view.preview.pixmap().isNull()
    view.show_cell(1, 1)
    assert view.images.count() == 2
    # One PR curve per class, named with its average precision.
    curves = view.pr_plot.getPlotItem().listDataItems()
    assert len(curves) == 2
    assert sorted(curve.name() for curve in curves) == ["cat (AP 1.00)", "dog (AP 1.00)"]

    # The page's own refresh reloads the same file: the open cell must survive it.
    shown: list[int] = []
    show = results._show
    monkeypatch.setattr(results, "_show", lambda items: (shown.append(len(items)), show(items)))
    window.show_page("jobs")
    window.pages["jobs"].tabs.setCurrentWidget(results)
    results.refresh()
    qtbot.waitUntil(lambda: len(shown) >= 1, timeout=10_000)
    view.show_cell(0, 1)
    results.refresh()
    qtbot.waitUntil(lambda: len(shown) >= 2, timeout=10_000)
    assert view.images.count() == 1
    assert window.grab().save(str(shots_dir / "jobs_results_confusion.png"))


def test_detection_confusion_matrix_has_background_and_draws_boxes(window: Any, store: Any, qtbot: Any,
                                                                   tmp_path: Path, shots_dir: Path) -> None:
    from tests.helpers.datasets_gen import make_dice_detection

    data = make_dice_detection(tmp_path / "dice", n=2, size=64)
    images = sorted(p for p in data.rglob("*.jpg"))
    items = [
        {"path": str(images[0]), "truth": [[0, 4, 4, 30, 30], [1, 34, 34, 60, 60]],
         "predictions": [[0, 0.9, 5, 5, 30, 30], [1, 0.6, 40, 2, 60, 20]]},  # square missed, one false square
        {"path": str(images[1]), "truth": [[1, 10, 10, 40, 40]], "predictions": [[1, 0.8, 10, 10, 41, 40]]},
    ]
    job_id = job_store.create_job(store, config_from_dict({"dataset": str(data)}))
    predictions = Path(job_store.get_job(store, job_id).output_dir or "") / "val_predictions.json"
    predictions.write_text(json.dumps({"format": 1, "task": "detect", "epoch": 3, "class_names": ["circle", "square"],
                                       "items": items}))
    with store.write() as session:
        session.add(Artifact(job_id=job_id, kind="val_predictions", path=str(predictions)))

    window.show_page("jobs")
    results = window.pages["jobs"].results
    window.pages["jobs"].tabs.setCurrentWidget(results)
    results.set_job(job_id)
    qtbot.waitUntil(lambda: results.confusion is not None and results.confusion.predictions is not None
                    and results.confusion.table.rowCount() == 3, timeout=20_000)
    view = results.confusion
    assert [view.table.verticalHeaderItem(r).text() for r in range(3)] == ["true circle", "true square", "true background"]
    assert [[view.cell_count(r, c) for c in range(3)] for r in range(3)] == [[1, 0, 0], [0, 1, 1], [0, 1, 0]]
    assert "2 of 3 ground-truth boxes" in view.title.text()

    view.show_cell(1, 2)  # true square, predicted background: the missed square
    assert view.images.count() == 1 and view.images.item(0).text() == images[0].name
    assert view.drawn_boxes == [("truth", 0), ("truth", 1), ("pred", 0), ("pred", 1)]
    assert "1 of 2 boxes right" in view.verdict.text() and "1 missed" in view.verdict.text()
    preview = view.preview.pixmap().toImage()
    assert not preview.isNull()
    # The dashed green ground-truth outline is drawn into the preview, not just listed.
    def greens(image: Any) -> int:
        return sum(1 for x in range(image.width()) for y in range(image.height())
                   if (lambda c: c.green() > 120 and c.red() < 100 and c.blue() < 110)(image.pixelColor(x, y)))

    from PySide6.QtGui import QImage

    assert greens(preview) > 20 and greens(QImage(str(images[0]))) == 0
    curves = view.pr_plot.getPlotItem().listDataItems()
    assert sorted(curve.name() for curve in curves) == ["circle (AP 1.00)", "square (AP 0.50)"]
    assert window.grab().save(str(shots_dir / "jobs_results_detection.png"))
