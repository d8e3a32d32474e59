"""Parity of an exported file with its checkpoint, on the job's real validation images.

Two levels, both recorded in the model card (``core.exports`` documents the tolerance):
raw outputs (the largest absolute difference of any output value, each exported output compared with
the eager output of the same shape) and the task (top-1 per image; boxes matched at IoU >= 0.9 with
their score difference; mask IoU of matched instances or of the class map).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from adapters.base import AdapterError
from core.evaluation import box_iou
from core.exports import (
    KEYPOINT_DISTANCE_PX,
    MASK_IOU,
    MATCH_IOU,
    MATCH_SCORE,
    PARITY_FORMATS,
    TOLERANCES,
    Parity,
    allowed_diff,
)

MAX_IMAGES = 16  # enough to catch a wrong export; each image runs both models


def _runner(exported: Path, fmt: str) -> Any:
    from adapters.export_runtime import OnnxModule, TorchScriptModule, _check_onnx_file, providers

    if fmt == "onnx":
        import onnxruntime as ort

        _check_onnx_file(exported)
        return OnnxModule(ort.InferenceSession(str(exported), providers=providers()))
    import torch

    return TorchScriptModule(torch.jit.load(str(exported), map_location="cpu").eval())


def _raw_diff(reference: list[Any], exported: list[Any]) -> tuple[float, float]:
    """(max abs diff, max |reference|) over exported outputs paired with the first eager output of their shape."""
    diff, scale, used = 0.0, 0.0, set()
    for output in exported:
        match = next((i for i, r in enumerate(reference) if i not in used and r.shape == output.shape), None)
        if match is None:
            raise AdapterError(f"the exported model returns an output of shape {list(output.shape)} that the "
                               "PyTorch model does not: the export is wrong")
        used.add(match)
        diff = max(diff, float(np.abs(reference[match] - output.astype(np.float32)).max()))
        scale = max(scale, float(np.abs(reference[match]).max()))
    return diff, scale


def match_boxes(ref: dict[str, Any], got: dict[str, Any], score_tol: float) -> dict[str, float]:
    """Greedy same-class matching of reference boxes (score >= MATCH_SCORE) at IoU >= MATCH_IOU."""
    keep = ref["scores"] >= MATCH_SCORE
    rb, rs, rc = ref["boxes"][keep], ref["scores"][keep], ref["classes"][keep]
    taken = np.zeros(len(got["boxes"]), dtype=bool)
    pairs: list[tuple[int, int]] = []
    iou = box_iou(rb, got["boxes"]) if len(rb) and len(got["boxes"]) else np.zeros((len(rb), len(got["boxes"])))
    for i in np.argsort(-rs, kind="stable"):
        candidates = np.where((~taken) & (got["classes"] == rc[i]) & (iou[i] >= MATCH_IOU))[0]
        if len(candidates):
            j = int(candidates[np.argmax(iou[i, candidates])])
            taken[j] = True
            pairs.append((int(i), j))
    extra = int(((~taken) & (got["scores"] >= MATCH_SCORE + score_tol)).sum())
    score_diff = max((abs(float(rs[i]) - float(got["scores"][j])) for i, j in pairs), default=0.0)
    return {"boxes": float(len(rb)), "matched": float(len(pairs)), "extra": float(extra),
            "max_score_diff": score_diff, "pairs": pairs}  # type: ignore[dict-item]


def _mask_iou(a: Any, b: Any) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


class Agreement:
    """Task-level agreement accumulated over images."""

    def __init__(self, score_tol: float) -> None:
        self.score_tol = score_tol
        self.top1 = [0, 0]  # agreeing, images
        self.boxes = {"boxes": 0.0, "matched": 0.0, "extra": 0.0, "max_score_diff": 0.0}
        self.mask_ious: list[float] = []
        self.keypoint_distances: list[float] = []  # per matched pose instance: its farthest keypoint

    def classes(self, ref: Any, got: Any) -> None:
        self.top1[0] += int(np.argmax(ref) == np.argmax(got))
        self.top1[1] += 1

    def detections(self, ref: dict[str, Any], got: dict[str, Any]) -> list[tuple[int, int]]:
        found = match_boxes(ref, got, self.score_tol)
        for key in ("boxes", "matched", "extra"):
            self.boxes[key] += found[key]
        self.boxes["max_score_diff"] = max(self.boxes["max_score_diff"], found["max_score_diff"])
        return found["pairs"]  # type: ignore[return-value]

    def summary(self) -> tuple[dict[str, float], str | None]:
        numbers: dict[str, float] = {}
        problems: list[str] = []
        if self.top1[1]:
            numbers["top1_agreement"] = self.top1[0] / self.top1[1]
            if self.top1[0] != self.top1[1]:
                problems.append(f"top-1 differs on {self.top1[1] - self.top1[0]} of {self.top1[1]} images")
        if self.boxes["boxes"] or self.boxes["extra"] or self.mask_ious or not self.top1[1]:
            numbers.update({f"{k}": v for k, v in self.boxes.items()})
            numbers["box_match_rate"] = self.boxes["matched"] / self.boxes["boxes"] if self.boxes["boxes"] else 1.0
            if self.boxes["matched"] < self.boxes["boxes"] or self.boxes["extra"]:
                problems.append(f"{int(self.boxes['matched'])} of {int(self.boxes['boxes'])} boxes matched at IoU ≥ "
                                f"{MATCH_IOU}, {int(self.boxes['extra'])} extra")
            if self.boxes["max_score_diff"] > self.score_tol:
                problems.append(f"box scores differ by up to {self.boxes['max_score_diff']:.4f}")
        if self.mask_ious:
            numbers["mask_iou"] = float(np.mean(self.mask_ious))
            if numbers["mask_iou"] < MASK_IOU:
                problems.append(f"mean mask IoU {numbers['mask_iou']:.3f} < {MASK_IOU}")
        if self.keypoint_distances:
            numbers["max_keypoint_distance_px"] = float(max(self.keypoint_distances))
            if numbers["max_keypoint_distance_px"] > KEYPOINT_DISTANCE_PX:
                problems.append(f"keypoints differ by up to {numbers['max_keypoint_distance_px']:.2f} px "
                                f"(> {KEYPOINT_DISTANCE_PX})")
        return numbers, "; ".join(problems) or None


# -- per framework task agreement -------------------------------------------------------------------
def _yolo_arrays(result: Any) -> dict[str, Any]:
    boxes = result.boxes
    if boxes is None:
        return {"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "classes": np.zeros(0)}
    return {"boxes": boxes.xyxy.cpu().numpy(), "scores": boxes.conf.cpu().numpy(), "classes": boxes.cls.cpu().numpy()}


def _ultralytics_agreement(subject: Any, exported: Path, images: list[Path], agreement: Agreement) -> None:
    from ultralytics import YOLO

    reference, other = YOLO(str(subject.source), task=subject.task), YOLO(str(exported), task=subject.task)
    for image in images:
        ref, got = subject.predict(reference, image), subject.predict(other, image)
        if subject.task == "classify":
            agreement.classes(ref.probs.data.cpu().numpy(), got.probs.data.cpu().numpy())
            continue
        pairs = agreement.detections(_yolo_arrays(ref), _yolo_arrays(got))
        keep: Any = np.where(ref.boxes.conf.cpu().numpy() >= MATCH_SCORE)[0] if ref.boxes is not None else []
        if subject.task == "segment" and ref.masks is not None and got.masks is not None:
            for i, j in pairs:
                agreement.mask_ious.append(_mask_iou(ref.masks.data[keep[i]].cpu().numpy() > 0.5,
                                                     got.masks.data[j].cpu().numpy() > 0.5))
        if subject.task == "pose" and ref.keypoints is not None and got.keypoints is not None:
            ref_points, got_points = ref.keypoints.xy.cpu().numpy(), got.keypoints.xy.cpu().numpy()
            for i, j in pairs:
                distances = np.linalg.norm(ref_points[keep[i]] - got_points[j], axis=-1)
                agreement.keypoint_distances.append(float(distances.max(initial=0.0)))


def _detr_arrays(subject: Any, outputs: list[Any], image: Path) -> dict[str, Any]:
    from types import SimpleNamespace

    import torch
    from PIL import Image

    with Image.open(image) as opened:
        width, height = opened.size
    found = subject.processor.post_process_object_detection(
        SimpleNamespace(logits=torch.from_numpy(outputs[0]), pred_boxes=torch.from_numpy(outputs[1])),
        threshold=MATCH_SCORE * 0.8, target_sizes=[(height, width)])[0]
    return {"boxes": found["boxes"].numpy(), "scores": found["scores"].numpy(), "classes": found["labels"].numpy()}


def _tensor_agreement(subject: Any, ref: list[Any], got: list[Any], image: Path, agreement: Agreement) -> None:
    if subject.task == "classify":
        agreement.classes(ref[0], got[0])
    elif subject.task == "detect":
        agreement.detections(_detr_arrays(subject, ref, image), _detr_arrays(subject, got, image))
    else:  # semantic segmentation: the IoU of each class's region in the two class maps
        ref_map, got_map = ref[0].argmax(1), got[0].argmax(1)
        for class_id in np.union1d(np.unique(ref_map), np.unique(got_map)):
            agreement.mask_ious.append(_mask_iou(ref_map == class_id, got_map == class_id))


def _images(val_images: list[str]) -> list[Path]:
    images = [Path(p) for p in val_images if Path(p).is_file()][:MAX_IMAGES]
    if not images:
        raise AdapterError("no validation image of the job is on this computer: parity needs real images "
                           "(give some with --images)")
    return images


def parity_check(subject: Any, exported: Path, fmt: str, val_images: list[str], progress: Any, *,
                 half: bool = False) -> Parity:
    tolerance = TOLERANCES["fp16" if half else "fp32"]
    if fmt not in PARITY_FORMATS:
        return {"verified": False, "images": 0, "max_abs_diff": float("nan"), "allowed_abs_diff": float("nan"),
                "agreement": {}, "tolerance": tolerance,
                "warning": f"not verified: this app checks parity for {' and '.join(PARITY_FORMATS)} only"}
    images = _images(val_images)
    progress(f"checking parity on {len(images)} validation images")
    runner = _runner(exported, fmt)
    agreement = Agreement(tolerance["score"])
    diff = scale = 0.0
    for image in images:
        array = subject.preprocess(image)
        reference, got = subject.reference(array), runner.raw(array)
        one_diff, one_scale = _raw_diff(reference, got)
        diff, scale = max(diff, one_diff), max(scale, one_scale)
        if subject.framework != "ultralytics":
            _tensor_agreement(subject, reference, [g.astype(np.float32) for g in got], image, agreement)
    if subject.framework == "ultralytics":
        _ultralytics_agreement(subject, exported, images, agreement)
    return _verdict(images, diff, scale, agreement, tolerance)


def _verdict(images: list[Path], diff: float, scale: float, agreement: Agreement,
             tolerance: dict[str, float]) -> Parity:
    allowed = allowed_diff(tolerance, scale)
    numbers, problem = agreement.summary()
    if diff > allowed:
        problem = "; ".join(p for p in (f"raw outputs differ by up to {diff:.3g} (allowed {allowed:.3g})", problem) if p)
    return {"verified": problem is None, "images": len(images), "max_abs_diff": diff, "allowed_abs_diff": allowed,
            "agreement": numbers, "tolerance": tolerance,
            "warning": None if problem is None else f"not verified: {problem}"}
