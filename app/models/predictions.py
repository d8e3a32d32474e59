"""Predictions as the shapes the inference canvas draws. No Qt here.

Boxes become rectangles (two corner points), masks polygons, keypoints points sharing their box's
group. The DICE (labelme) export of the same result, its path and its one-line summary are
``core.services.inference``'s (shared with ``vision-platform predict``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.services.inference import KEYPOINT_MIN_CONFIDENCE

__all__ = ["OverlayShape", "overlay_shapes", "sourced_shapes"]


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
