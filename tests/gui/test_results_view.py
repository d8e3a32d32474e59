"""The Results tab's interactive confusion matrix: cells list their validation images, an image
shows its prediction against the ground truth, and PR curves are drawn per class."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.config import config_from_dict
from core.db.models import Artifact
from core.jobs import store as job_store
from tests.helpers.datasets_gen import make_imagefolder


def test_confusion_matrix_cells_list_images_and_show_prediction(window: Any, store: Any, qtbot: Any,
                                                                tmp_path: Path) -> None:
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

    window.show_page("jobs")
    window.pages["jobs"].tabs.setCurrentWidget(results)
    qtbot.wait(500)  # the page's own refresh reloads the same file: the open cell must survive it
    view.show_cell(0, 1)
    qtbot.wait(500)
    assert view.images.count() == 1
    shots = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    assert window.grab().save(str(shots / "jobs_results_confusion.png"))
