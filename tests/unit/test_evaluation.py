from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.evaluation import ValPredictions


def write(tmp_path: Path) -> Path:
    items = [
        {"path": "a.png", "true": 0, "pred": 0, "scores": [0.9, 0.1]},
        {"path": "b.png", "true": 0, "pred": 1, "scores": [0.4, 0.6]},
        {"path": "c.png", "true": 1, "pred": 1, "scores": [0.2, 0.8]},
        {"path": "d.png", "true": 1, "pred": 1, "scores": [0.3, 0.7]},
    ]
    path = tmp_path / "val_predictions.json"
    path.write_text(json.dumps({"format": 1, "class_names": ["cat", "dog"], "items": items}))
    return path


def test_confusion_matrix_and_cells(tmp_path: Path) -> None:
    predictions = ValPredictions.load(write(tmp_path))
    assert predictions.confusion().tolist() == [[1, 1], [0, 2]]
    assert [item["path"] for item in predictions.cell_items(0, 1)] == ["b.png"]
    assert predictions.cell_items(1, 0) == []


def test_pr_curve_one_vs_rest(tmp_path: Path) -> None:
    predictions = ValPredictions.load(write(tmp_path))
    precision, recall, average_precision = predictions.pr_curve(1)
    # dog scores sorted: 0.8 (dog), 0.7 (dog), 0.6 (cat), 0.1 (cat)
    assert precision.tolist() == pytest.approx([1.0, 1.0, 2 / 3, 0.5])
    assert recall.tolist() == pytest.approx([0.5, 1.0, 1.0, 1.0])
    assert average_precision == pytest.approx(1.0)


def test_not_a_predictions_file(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="not a validation predictions file"):
        ValPredictions.load(bad)
