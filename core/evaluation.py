"""Evaluation views computed from a run's per-image validation predictions (``val_predictions.json``).

Workers write the file once for the best model (:func:`save_val_predictions`, the one writer; its
shape is ``core.contracts.ValPredictionsFile``); the GUI turns it into an interactive confusion
matrix whose cells list their images, and precision/recall curves. Plain numpy, no Qt.

Two kinds of file, told apart by ``task``:

- classification (``classify``): one item per image: path, true class, predicted class, class scores.
- detection (``detect``/``segment``/``pose``): one item per image: path, ground-truth boxes
  ``[class, x1, y1, x2, y2]`` and predicted boxes ``[class, confidence, x1, y1, x2, y2]`` in pixels,
  kept down to a low confidence so PR curves span all thresholds. The confusion matrix follows
  Ultralytics' detection matrix: predictions above ``conf_threshold`` are matched one-to-one to
  ground truth by IoU above ``iou_threshold``; an unmatched ground-truth box counts as predicted
  "background", an unmatched prediction as true "background". An image is listed in every cell
  one of its boxes falls into.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from core.config import DETECTION_TASKS
from core.contracts import VAL_PREDICTIONS_FORMAT, ClassifyValItem, DetectionValItem, ValPredictionsFile
from core.files import atomic_write_bytes

BACKGROUND = "background"
DEFAULT_CONF_THRESHOLD = 0.25  # Ultralytics' confusion-matrix defaults
DEFAULT_IOU_THRESHOLD = 0.5


def save_val_predictions(target: Path, *, task: str, epoch: int | None, class_names: list[str],
                         items: list[ClassifyValItem] | list[DetectionValItem]) -> Path:
    """Write ``val_predictions.json`` atomically; detection files carry the matrix thresholds."""
    payload: ValPredictionsFile = {"format": VAL_PREDICTIONS_FORMAT, "task": task, "epoch": epoch,
                                   "class_names": list(class_names), "items": items}
    if task in DETECTION_TASKS:
        payload["conf_threshold"] = DEFAULT_CONF_THRESHOLD
        payload["iou_threshold"] = DEFAULT_IOU_THRESHOLD
    atomic_write_bytes(target, json.dumps(payload).encode("utf-8"))
    return target


def _precision_recall(scores: np.ndarray, hits: np.ndarray, positives: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Precision and recall at every score threshold (highest first) and average precision."""
    if not len(scores) or positives <= 0:
        return np.zeros(0), np.zeros(0), 0.0
    order = np.argsort(-scores, kind="stable")
    ordered_hits = hits[order]
    true_positives = np.cumsum(ordered_hits)
    precision = true_positives / np.arange(1, len(ordered_hits) + 1)
    recall = true_positives / positives
    average_precision = float(np.sum(precision[ordered_hits]) / positives)
    return precision, recall, average_precision


def _items(data: ValPredictionsFile) -> list[dict[str, Any]]:
    """The file's items as the plain dicts the views index into (TypedDicts are dicts at run time)."""
    return cast(list[dict[str, Any]], list(data["items"]))


@dataclass
class ValPredictions:
    """Classification predictions: ``matrix[true, predicted]`` counts images."""

    class_names: list[str]
    items: list[dict[str, Any]]  # core.contracts.ClassifyValItem
    epoch: int | None = None
    unit = "image"

    @classmethod
    def load(cls, path: str | Path) -> ValPredictions | DetectionValPredictions:
        data: ValPredictionsFile = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict) or "items" not in data or "class_names" not in data:
            raise ValueError(f"{path}: not a validation predictions file")
        if data.get("task") in DETECTION_TASKS:
            return DetectionValPredictions(
                list(data["class_names"]), _items(data), data.get("epoch"),
                task=str(data["task"]),
                conf_threshold=float(data.get("conf_threshold", DEFAULT_CONF_THRESHOLD)),
                iou_threshold=float(data.get("iou_threshold", DEFAULT_IOU_THRESHOLD)),
            )
        return cls(list(data["class_names"]), _items(data), data.get("epoch"))

    @property
    def matrix_labels(self) -> list[str]:
        return list(self.class_names)

    def confusion(self) -> np.ndarray:
        size = len(self.class_names)
        matrix = np.zeros((size, size), dtype=int)
        for item in self.items:
            matrix[int(item["true"]), int(item["pred"])] += 1
        return matrix

    def summary(self) -> str:
        matrix = self.confusion()
        return f"{int(matrix.trace())} of {int(matrix.sum())} validation images right"

    def cell_items(self, true_id: int, pred_id: int) -> list[dict[str, Any]]:
        return [item for item in self.items if int(item["true"]) == true_id and int(item["pred"]) == pred_id]

    def pr_curve(self, class_id: int) -> tuple[np.ndarray, np.ndarray, float]:
        """One-vs-rest precision and recall over all score thresholds, and average precision."""
        scores = np.array([float(item["scores"][class_id]) for item in self.items])
        positives = np.array([int(item["true"]) == class_id for item in self.items], dtype=bool)
        return _precision_recall(scores, positives, int(positives.sum()))

    def verdict(self, item: dict[str, Any]) -> str:
        names = self.class_names
        scores = item.get("scores") or []
        confidence = f" ({scores[item['pred']]:.0%})" if len(scores) > item["pred"] else ""
        mark = "✓" if item["true"] == item["pred"] else "✗"
        return f"{mark} predicted {names[item['pred']]}{confidence} · ground truth {names[item['true']]}"

    def overlay(self, item: dict[str, Any]) -> list[tuple[str, int, list[float], float | None]]:
        """Boxes to draw over the image: none for classification."""
        return []


def box_iou(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """IoU of every box in ``first`` (N×4 xyxy) with every box in ``second`` (M×4) → N×M."""
    if not len(first) or not len(second):
        return np.zeros((len(first), len(second)))
    top_left = np.maximum(first[:, None, :2], second[None, :, :2])
    bottom_right = np.minimum(first[:, None, 2:], second[None, :, 2:])
    intersection = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    area_first = (first[:, 2:] - first[:, :2]).clip(0).prod(axis=1)
    area_second = (second[:, 2:] - second[:, :2]).clip(0).prod(axis=1)
    union = area_first[:, None] + area_second[None, :] - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection, dtype=float), where=union > 0)


@dataclass
class DetectionValPredictions:
    """Detection predictions: ``matrix[true, predicted]`` counts boxes, with a background row/column."""

    class_names: list[str]
    items: list[dict[str, Any]]  # core.contracts.DetectionValItem
    epoch: int | None = None
    task: str = "detect"
    conf_threshold: float = DEFAULT_CONF_THRESHOLD
    iou_threshold: float = DEFAULT_IOU_THRESHOLD
    unit = "box"
    _pairs: list[list[tuple[int, int]]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._pairs = [self._match(item) for item in self.items]

    @property
    def background(self) -> int:
        return len(self.class_names)

    @property
    def matrix_labels(self) -> list[str]:
        return [*self.class_names, BACKGROUND]

    @staticmethod
    def _arrays(item: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        truth = np.asarray(item.get("truth") or [], dtype=float).reshape(-1, 5)
        predictions = np.asarray(item.get("predictions") or [], dtype=float).reshape(-1, 6)
        return truth, predictions

    def _match(self, item: dict[str, Any]) -> list[tuple[int, int]]:
        """(true class, predicted class) for every box of one image, background for the unmatched."""
        truth, predictions = self._arrays(item)
        predictions = predictions[predictions[:, 1] > self.conf_threshold]
        iou = box_iou(truth[:, 1:5], predictions[:, 2:6])
        pairs: list[tuple[int, int]] = []
        matched_truth: set[int] = set()
        matched_predictions: set[int] = set()
        rows, columns = np.nonzero(iou > self.iou_threshold)
        # Highest IoU first, each box used once (class-agnostic, as Ultralytics' ConfusionMatrix).
        for index in np.argsort(-iou[rows, columns], kind="stable"):
            row, column = int(rows[index]), int(columns[index])
            if row in matched_truth or column in matched_predictions:
                continue
            matched_truth.add(row)
            matched_predictions.add(column)
            pairs.append((int(truth[row, 0]), int(predictions[column, 0])))
        pairs += [(int(truth[row, 0]), self.background) for row in range(len(truth)) if row not in matched_truth]
        pairs += [(self.background, int(predictions[column, 0])) for column in range(len(predictions))
                  if column not in matched_predictions]
        return pairs

    def confusion(self) -> np.ndarray:
        size = len(self.class_names) + 1
        matrix = np.zeros((size, size), dtype=int)
        for pairs in self._pairs:
            for true_id, pred_id in pairs:
                matrix[true_id, pred_id] += 1
        return matrix

    def summary(self) -> str:
        matrix = self.confusion()
        correct = int(np.trace(matrix[:-1, :-1]))
        truth = int(matrix[:-1].sum())
        return (f"{correct} of {truth} ground-truth boxes found with the right class in {len(self.items)} "
                f"validation images (confidence > {self.conf_threshold:g}, IoU > {self.iou_threshold:g})")

    def cell_items(self, true_id: int, pred_id: int) -> list[dict[str, Any]]:
        return [item for item, pairs in zip(self.items, self._pairs, strict=True) if (true_id, pred_id) in pairs]

    def pr_curve(self, class_id: int) -> tuple[np.ndarray, np.ndarray, float]:
        """Precision and recall of one class's boxes at IoU ``iou_threshold`` over all confidences
        (greedy matching, highest confidence first), and AP at that IoU."""
        scores: list[float] = []
        hits: list[bool] = []
        positives = 0
        for item in self.items:
            truth, predictions = self._arrays(item)
            truth = truth[truth[:, 0] == class_id]
            predictions = predictions[predictions[:, 0] == class_id]
            positives += len(truth)
            predictions = predictions[np.argsort(-predictions[:, 1], kind="stable")]
            iou = box_iou(predictions[:, 2:6], truth[:, 1:5])
            taken = np.zeros(len(truth), dtype=bool)
            for row in range(len(predictions)):
                candidates = np.where(~taken & (iou[row] > self.iou_threshold))[0] if len(truth) else np.zeros(0, int)
                hit = len(candidates) > 0
                if hit:
                    taken[candidates[np.argmax(iou[row, candidates])]] = True
                scores.append(float(predictions[row, 1]))
                hits.append(hit)
        return _precision_recall(np.array(scores), np.array(hits, dtype=bool), positives)

    def verdict(self, item: dict[str, Any]) -> str:
        pairs = self._pairs[self.items.index(item)] if item in self.items else self._match(item)
        found = sum(1 for true_id, pred_id in pairs if true_id == pred_id)
        wrong = sum(1 for true_id, pred_id in pairs
                    if true_id != pred_id and self.background not in (true_id, pred_id))
        missed = sum(1 for _true, pred_id in pairs if pred_id == self.background)
        extra = sum(1 for true_id, _pred in pairs if true_id == self.background)
        truth = found + wrong + missed
        mark = "✓" if found == truth and not extra else "✗"
        parts = [f"{mark} {found} of {truth} boxes right"]
        parts += [text for count, text in ((wrong, f"{wrong} wrong class"), (missed, f"{missed} missed"),
                                           (extra, f"{extra} false detections")) if count]
        return " · ".join(parts)

    def overlay(self, item: dict[str, Any]) -> list[tuple[str, int, list[float], float | None]]:
        """("truth", class, box, None) and ("pred", class, box, confidence) above the threshold."""
        truth, predictions = self._arrays(item)
        shapes: list[tuple[str, int, list[float], float | None]] = [
            ("truth", int(row[0]), [float(v) for v in row[1:5]], None) for row in truth]
        shapes += [("pred", int(row[0]), [float(v) for v in row[2:6]], float(row[1]))
                   for row in predictions if row[1] > self.conf_threshold]
        return shapes
