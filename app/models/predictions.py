"""Predictions as shapes: for the canvas overlay and for DICE (labelme) JSON export. No Qt here.

Boxes become rectangles (two corner points), masks polygons, keypoints points sharing their box's
``group_id``; a classification's top-1 label becomes the image-level flag, as DICE classification
sets store it. The exported file can be opened in labelme, corrected and added to a dataset; its
format is written by ``core.datasets.dice`` (the one labelme writer, shared with the converter).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.datasets.dice import (
    LABELME_VERSION,
    LabelmeDocument,
    labelme_document,
    labelme_shape,
    write_labelme,
)

__all__ = ["LABELME_VERSION", "OverlayShape", "dice_document", "dice_json_path", "overlay_shapes", "sourced_shapes",
           "summary", "write_dice_json"]
KEYPOINT_MIN_CONFIDENCE = 0.5  # keypoints the model itself doubts are not drawn or exported


@dataclass(frozen=True)
class OverlayShape:
    label: str
    shape_type: str  # rectangle | polygon | point
    points: list[tuple[float, float]]
    class_id: int
    confidence: float
    group_id: int | None = None


def sourced_shapes(result: dict[str, Any]) -> list[tuple[dict[str, Any], OverlayShape]]:
    """Each shape with the prediction dict it comes from; masks first so boxes and labels sit on top.

    ``filter_predictions`` returns the same dicts it kept, so the canvas can build the shapes of
    the raw result once and only show or hide them when the sliders move.
    """
    shapes: list[tuple[dict[str, Any], OverlayShape]] = []
    for mask in result.get("masks") or []:
        polygon = [(float(x), float(y)) for x, y in mask.get("polygon") or []]
        if len(polygon) >= 3:
            shapes.append((mask, OverlayShape(mask["label"], "polygon", polygon, int(mask["class_id"]),
                                              float(mask["confidence"]))))
    for group, box in enumerate(result.get("boxes") or [], start=1):
        shapes.append((box, OverlayShape(box["label"], "rectangle",
                                         [(float(box["x1"]), float(box["y1"])), (float(box["x2"]), float(box["y2"]))],
                                         int(box["class_id"]), float(box["confidence"]), group)))
    for group, instance in enumerate(result.get("keypoints") or [], start=1):
        for index, point in enumerate(instance.get("points") or []):
            confidence = float(point[2]) if len(point) > 2 else 1.0
            if confidence >= KEYPOINT_MIN_CONFIDENCE:
                shapes.append((instance, OverlayShape(f"kp{index}", "point", [(float(point[0]), float(point[1]))],
                                                      int(instance["class_id"]), confidence, group)))
    return shapes


def overlay_shapes(result: dict[str, Any]) -> list[OverlayShape]:
    """What the canvas draws for a (filtered) result."""
    return [shape for _source, shape in sourced_shapes(result)]


def dice_document(result: dict[str, Any], image_path: Path) -> LabelmeDocument:
    """A labelme/DICE document for ``image_path`` (imagePath relative to the JSON, no image data)."""
    width, height = (result.get("image_size") or [None, None])[:2]
    with_keypoints = bool(result.get("keypoints"))
    shapes = [
        labelme_shape(shape.label, shape.points, shape.shape_type,
                      group_id=shape.group_id if with_keypoints and shape.shape_type in ("point", "rectangle") else None,
                      description=f"confidence {shape.confidence:.3f}")
        for shape in overlay_shapes(result)
    ]
    top_k = result.get("top_k") or []
    flags = {item["label"]: index == 0 for index, item in enumerate(top_k)}
    return labelme_document(shapes, image_path.name, width, height, flags)


def dice_json_path(image_path: Path) -> Path:
    return image_path.with_suffix(".json")


def write_dice_json(result: dict[str, Any], image_path: Path) -> Path:
    return write_labelme(dice_document(result, image_path), dice_json_path(image_path))


def summary(result: dict[str, Any]) -> str:
    """One line for the batch table: "3 objects: 2 circle, 1 square" or "red 91.2 %"."""
    top_k = result.get("top_k") or []
    if top_k and not result.get("boxes"):
        best = top_k[0]
        return f"{best['label']} {best['confidence'] * 100:.1f} %"
    boxes = result.get("boxes") or []
    if not boxes:
        return "nothing found"
    counts: dict[str, int] = {}
    for box in boxes:
        counts[box["label"]] = counts.get(box["label"], 0) + 1
    parts = ", ".join(f"{n} {label}" for label, n in sorted(counts.items(), key=lambda item: -item[1]))
    return f"{len(boxes)} object{'s' if len(boxes) != 1 else ''}: {parts}"
