from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.evaluation import DetectionValPredictions, ValPredictions, box_iou


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


def write_detection(tmp_path: Path) -> Path:
    items = [
        # a: one cat found right, one dog missed, one false "dog" far from anything
        {"path": "a.png",
         "truth": [[0, 0, 0, 10, 10], [1, 20, 20, 30, 30]],
         "predictions": [[0, 0.9, 0, 0, 10, 11], [1, 0.8, 40, 40, 50, 50], [1, 0.1, 20, 20, 30, 30]]},
        # b: a dog predicted as cat (IoU 0.81), plus a low-confidence duplicate below the threshold
        {"path": "b.png",
         "truth": [[1, 0, 0, 10, 10]],
         "predictions": [[0, 0.7, 1, 1, 10, 10], [1, 0.2, 0, 0, 10, 10]]},
    ]
    path = tmp_path / "val_predictions.json"
    path.write_text(json.dumps({"format": 1, "task": "detect", "class_names": ["cat", "dog"], "items": items,
                                "conf_threshold": 0.25, "iou_threshold": 0.5}))
    return path


def test_detection_confusion_matrix_has_background(tmp_path: Path) -> None:
    predictions = ValPredictions.load(write_detection(tmp_path))
    assert isinstance(predictions, DetectionValPredictions)
    assert predictions.matrix_labels == ["cat", "dog", "background"]
    # rows: true cat, dog, background; columns: predicted cat, dog, background
    assert predictions.confusion().tolist() == [[1, 0, 0], [1, 0, 1], [0, 1, 0]]
    assert [i["path"] for i in predictions.cell_items(1, 2)] == ["a.png"]  # the missed dog
    assert [i["path"] for i in predictions.cell_items(1, 0)] == ["b.png"]  # dog called cat
    assert [i["path"] for i in predictions.cell_items(2, 1)] == ["a.png"]  # false detection
    assert "1 of 3 ground-truth boxes" in predictions.summary()
    verdict = predictions.verdict(predictions.items[0])
    assert verdict == "✗ 1 of 2 boxes right · 1 missed · 1 false detections"
    kinds = [shape[0] for shape in predictions.overlay(predictions.items[0])]
    assert kinds == ["truth", "truth", "pred", "pred"]  # the 0.1 prediction is below the threshold


def test_detection_pr_curve_counts_every_confidence(tmp_path: Path) -> None:
    predictions = ValPredictions.load(write_detection(tmp_path))
    precision, recall, average_precision = predictions.pr_curve(1)
    # dog predictions by confidence: 0.8 (false), 0.2 (b's dog, hit), 0.1 (a's dog, hit); 2 dogs
    assert precision.tolist() == pytest.approx([0.0, 0.5, 2 / 3])
    assert recall.tolist() == pytest.approx([0.0, 0.5, 1.0])
    assert average_precision == pytest.approx((0.5 + 2 / 3) / 2)


def test_box_iou() -> None:
    iou = box_iou(np.array([[0, 0, 10, 10]], float), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], float))
    assert iou.tolist()[0] == pytest.approx([1.0, 1 / 3, 0.0])
