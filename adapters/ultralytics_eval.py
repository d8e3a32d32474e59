"""Per-image validation predictions of a YOLO run's best model (``val_predictions.json``).

Ultralytics' own validator only keeps the aggregate confusion matrix; the GUI's interactive matrix
needs to know which image lands in which cell. After training we therefore predict the validation
split once more with ``best.pt`` (a low confidence threshold, so PR curves span all thresholds) and
store every image's ground-truth and predicted boxes in pixels (``core.contracts.ValPredictionsFile``,
written by ``core.evaluation.save_val_predictions``).
Classification runs store each image's class scores instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from core.contracts import ClassifyValItem, DetectionValItem
from core.evaluation import save_val_predictions

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
MAX_IMAGES = 2000  # one extra validation pass over at most this many images; enough for a matrix
PREDICT_CONF = 0.001  # Ultralytics' validation default: keeps the low-confidence tail for PR curves
PREDICT_IOU = 0.7
MAX_DETECTIONS = 100
BATCH = 16


def class_names_of(data_dir: Path) -> list[str]:
    """The class names of a dataset converted by ``to_yolo``, in id order (its data.yaml)."""
    raw = yaml.safe_load((data_dir / "data.yaml").read_text(encoding="utf-8")) or {}
    names = raw.get("names") or {}
    if isinstance(names, dict):
        return [str(names[key]) for key in sorted(names, key=int)]
    return [str(name) for name in names]


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())[:MAX_IMAGES]


def _truth_boxes(label_file: Path, task: str, width: int, height: int) -> list[list[float]]:
    """YOLO label lines (normalised) → [class, x1, y1, x2, y2] in pixels. Segment lines are polygons."""
    boxes: list[list[float]] = []
    if not label_file.is_file():
        return boxes
    for line in label_file.read_text(encoding="utf-8").splitlines():
        values = line.split()
        if len(values) < 5:
            continue
        class_id, numbers = int(float(values[0])), [float(v) for v in values[1:]]
        if task == "segment" and len(numbers) > 4:
            xs, ys = numbers[0::2], numbers[1::2]
            x1, y1, x2, y2 = min(xs), min(ys), max(xs), max(ys)
        else:
            cx, cy, w, h = numbers[:4]
            x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
        boxes.append([class_id, round(x1 * width, 2), round(y1 * height, 2), round(x2 * width, 2), round(y2 * height, 2)])
    return boxes


def _predict(model: Any, images: list[Path], **options: Any) -> Any:
    for start in range(0, len(images), BATCH):
        yield from model.predict([str(p) for p in images[start:start + BATCH]], verbose=False, **options)


def write_val_predictions(weights: Path, data_dir: Path, task: str, *, image_size: int, device: str,
                          epoch: int | None, target: Path) -> Path | None:
    """Predict the run's validation images with ``weights`` and write ``target``; None without images."""
    from ultralytics import YOLO

    names = class_names_of(data_dir)
    model = YOLO(str(weights), task=task)
    options = {"imgsz": image_size, "device": device}
    if task == "classify":
        index = {name: i for i, name in enumerate(names)}
        images = [p for p in _images(data_dir / "val") if p.parent.name in index]
        scored: list[ClassifyValItem] = []
        for path, result in zip(images, _predict(model, images, **options), strict=True):
            scores = result.probs.data.float().cpu().tolist()
            scored.append({"path": str(path), "true": index[path.parent.name],
                           "pred": int(max(range(len(scores)), key=scores.__getitem__)),
                           "scores": [round(float(v), 5) for v in scores]})
        items: list[ClassifyValItem] | list[DetectionValItem] = scored
    else:
        images = _images(data_dir / "images" / "val")
        options.update(conf=PREDICT_CONF, iou=PREDICT_IOU, max_det=MAX_DETECTIONS)
        boxed: list[DetectionValItem] = []
        for path, result in zip(images, _predict(model, images, **options), strict=True):
            height, width = (int(v) for v in result.orig_shape)
            label_file = data_dir / "labels" / "val" / path.relative_to(data_dir / "images" / "val").with_suffix(".txt")
            predictions: list[list[float]] = []
            if result.boxes is not None and len(result.boxes):
                for box, confidence, class_id in zip(result.boxes.xyxy.cpu().tolist(), result.boxes.conf.cpu().tolist(),
                                                     result.boxes.cls.cpu().tolist(), strict=True):
                    predictions.append([int(class_id), round(float(confidence), 4), *(round(float(v), 2) for v in box)])
            boxed.append({"path": str(path), "truth": _truth_boxes(label_file, task, width, height),
                          "predictions": predictions})
        items = boxed
    if not items:
        return None
    return save_val_predictions(target, task=task, epoch=epoch, class_names=names, items=items)
