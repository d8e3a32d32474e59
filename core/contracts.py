"""The shapes of the data that crosses a process boundary, declared once.

Adapters produce these dicts inside worker processes; the runner, the canvas, the DICE export and the
evaluation views consume them in the app. They travel as JSON, so they are ``TypedDict``s (plain
dicts at run time, checked by mypy): an inference result (one per image, the ``result`` of an
``infer-worker`` answer), the content of ``val_predictions.json`` and the ``job.json`` the runner
writes for the worker. :func:`inference_result` is the one builder of an inference result.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import NotRequired, TypedDict


class JobInfo(TypedDict, total=False):
    """``job.json`` in a run directory."""

    job_id: int
    project_id: int | None
    resume: bool
    memory_budget_mb: int  # Settings.memory_budget_mb when the job started (0: automatic)


# -- inference result ------------------------------------------------------------------------------


class ClassScore(TypedDict):
    class_id: int
    label: str
    confidence: float


class Box(TypedDict):
    """A detected box in pixels of the original image (xyxy)."""

    x1: float
    y1: float
    x2: float
    y2: float
    confidence: float
    class_id: int
    label: str


class Mask(TypedDict):
    """An instance mask as a polygon of [x, y] pixel points; aligned with ``boxes`` by index."""

    class_id: int
    label: str
    confidence: float
    polygon: list[list[float]]


class KeypointInstance(TypedDict):
    """One instance's keypoints as [x, y, confidence]; aligned with ``boxes`` by index."""

    class_id: int
    label: str
    confidence: float
    points: list[list[float]]


class ClassArea(TypedDict):
    """How much of the image one class covers in a semantic segmentation."""

    class_id: int
    label: str
    pixels: int
    fraction: float


class ClassMask(TypedDict):
    """Semantic segmentation: one class id per pixel, as an 8-bit PNG (pixel value = class id, 0 =
    background) in base64, so the result stays JSON; ``areas`` lists the classes present, largest first."""

    png_base64: str
    width: int
    height: int
    class_names: list[str]
    areas: list[ClassArea]


def class_mask(png: bytes, size: tuple[int, int], class_names: list[str], pixels: dict[int, int]) -> ClassMask:
    """The one builder of a :class:`ClassMask` (``pixels``: class id -> pixel count)."""
    total = max(1, sum(pixels.values()))
    areas: list[ClassArea] = [
        {"class_id": int(k), "label": class_names[k] if k < len(class_names) else str(k), "pixels": int(v),
         "fraction": round(v / total, 6)}
        for k, v in sorted(pixels.items(), key=lambda item: -item[1]) if v > 0]
    return {"png_base64": base64.b64encode(png).decode("ascii"), "width": int(size[0]), "height": int(size[1]),
            "class_names": list(class_names), "areas": areas}


def class_mask_png(mask: ClassMask) -> bytes:
    """The PNG of a :class:`ClassMask` (what "export" writes beside the image)."""
    return base64.b64decode(mask["png_base64"])


class InferenceResult(TypedDict):
    """What ``run_inference`` returns. Boxes, masks and keypoints share one index (the filter keeps
    them aligned); ``top_k`` holds class scores, best first (classification)."""

    task: str
    inference_time_ms: float
    image_size: list[int]  # [width, height] of the original image
    boxes: list[Box]
    masks: list[Mask]
    keypoints: list[KeypointInstance]
    top_k: list[ClassScore]
    mask_png: NotRequired[bytes]  # in-process callers only (never sent as JSON)
    class_mask: NotRequired[ClassMask]  # semantic segmentation (JSON-safe)


def inference_result(
    task: str,
    *,
    elapsed_ms: float,
    image_size: tuple[int, int] | list[int],
    boxes: Iterable[Box] = (),
    masks: Iterable[Mask] = (),
    keypoints: Iterable[KeypointInstance] = (),
    top_k: Iterable[ClassScore] = (),
) -> InferenceResult:
    return {
        "task": task,
        "inference_time_ms": round(float(elapsed_ms), 3),
        "image_size": [int(image_size[0]), int(image_size[1])],
        "boxes": list(boxes),
        "masks": list(masks),
        "keypoints": list(keypoints),
        "top_k": list(top_k),
    }


# -- val_predictions.json --------------------------------------------------------------------------


class ClassifyValItem(TypedDict):
    """One validation image of a classification run."""

    path: str
    true: int
    pred: int
    scores: list[float]  # one per class


class DetectionValItem(TypedDict):
    """One validation image of a detection/segment/pose run, in pixels:
    ``truth`` rows ``[class, x1, y1, x2, y2]``, ``predictions`` rows ``[class, confidence, x1, y1, x2, y2]``."""

    path: str
    truth: list[list[float]]
    predictions: list[list[float]]


class ValPredictionsFile(TypedDict):
    """``val_predictions.json`` (format 1); the thresholds are present for detection tasks only."""

    format: int
    task: str
    epoch: int | None
    class_names: list[str]
    items: list[ClassifyValItem] | list[DetectionValItem]
    conf_threshold: NotRequired[float]
    iou_threshold: NotRequired[float]


VAL_PREDICTIONS_FORMAT = 1
