"""Evaluation views computed from a run's per-image validation predictions (``val_predictions.json``).

Workers write the file (one item per validation image: path, true class, predicted class, class
scores); the GUI turns it into an interactive confusion matrix whose cells list their images, and
one-vs-rest precision/recall curves. Plain numpy, no Qt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class ValPredictions:
    class_names: list[str]
    items: list[dict[str, Any]]  # {"path", "true", "pred", "scores"}
    epoch: int | None = None

    @classmethod
    def load(cls, path: str | Path) -> ValPredictions:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict) or "items" not in data or "class_names" not in data:
            raise ValueError(f"{path}: not a validation predictions file")
        return cls(list(data["class_names"]), list(data["items"]), data.get("epoch"))

    def confusion(self) -> np.ndarray:
        """matrix[true, predicted] = number of images."""
        size = len(self.class_names)
        matrix = np.zeros((size, size), dtype=int)
        for item in self.items:
            matrix[int(item["true"]), int(item["pred"])] += 1
        return matrix

    def cell_items(self, true_id: int, pred_id: int) -> list[dict[str, Any]]:
        return [item for item in self.items if int(item["true"]) == true_id and int(item["pred"]) == pred_id]

    def pr_curve(self, class_id: int) -> tuple[np.ndarray, np.ndarray, float]:
        """One-vs-rest precision and recall over all score thresholds, and average precision."""
        scores = np.array([float(item["scores"][class_id]) for item in self.items])
        positives = np.array([int(item["true"]) == class_id for item in self.items])
        if not len(scores) or not positives.any():
            return np.zeros(0), np.zeros(0), 0.0
        order = np.argsort(-scores, kind="stable")
        hits = positives[order]
        true_positives = np.cumsum(hits)
        precision = true_positives / np.arange(1, len(hits) + 1)
        recall = true_positives / hits.sum()
        average_precision = float(np.sum(precision[hits]) / hits.sum())
        return precision, recall, average_precision
