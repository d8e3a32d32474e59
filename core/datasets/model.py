"""The in-memory dataset index every reader returns and every consumer (adapters, GUI, CLI) reads.

Readers never decode pixels to build it: sizes come from image headers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

ShapeType = Literal["rectangle", "polygon", "circle", "point", "line", "linestrip", "mask"]
Severity = Literal["error", "warning", "info"]
SplitName = Literal["train", "val", "test"]


@dataclass
class Shape:
    """One annotation in image pixel coordinates (DICE/labelme semantics).

    rectangle: two corner points (any order); polygon: >= 3 points; circle: centre + a point on the edge;
    point: one point; line/linestrip: >= 2 points (not used for training).
    """

    label: str
    shape_type: ShapeType
    points: list[tuple[float, float]]
    group_id: int | None = None
    flags: dict[str, bool] = field(default_factory=dict)

    def bbox(self) -> tuple[float, float, float, float]:
        """(x1, y1, x2, y2) with x1 <= x2, y1 <= y2."""
        if self.shape_type == "circle" and len(self.points) >= 2:
            (cx, cy), (ex, ey) = self.points[0], self.points[1]
            radius = ((ex - cx) ** 2 + (ey - cy) ** 2) ** 0.5
            return (cx - radius, cy - radius, cx + radius, cy + radius)
        xs = [p[0] for p in self.points]
        ys = [p[1] for p in self.points]
        return (min(xs), min(ys), max(xs), max(ys))


@dataclass(frozen=True)
class Instance:
    """One object: the shapes (parts) drawn for it. In labelme, shapes with the same label and
    ``group_id`` are one object drawn in several parts (e.g. split by an occluder)."""

    label: str
    parts: tuple[Shape, ...]
    group_id: int | None = None

    def bbox(self) -> tuple[float, float, float, float]:
        """The union of the parts' boxes."""
        return union_box([part.bbox() for part in self.parts])


def union_box(boxes: list[tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    """The box around (x1, y1, x2, y2) boxes: an object drawn in several parts (at least one box)."""
    if len(boxes) == 1:
        return boxes[0]
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def group_instances(shapes: list[Shape]) -> list[Instance]:
    """Shapes as objects, in the order of each object's first part (labelme's converters' rule: one
    object per (label, group_id); shapes without a group_id are objects of their own). Points are
    never merged: grouped points are a pose object's keypoints, one per point."""
    groups: dict[tuple[str, int], list[Shape]] = {}
    order: list[tuple[str, int] | Shape] = []
    for shape in shapes:
        if shape.group_id is None or shape.shape_type == "point":
            order.append(shape)
            continue
        key = (shape.label, shape.group_id)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(shape)
    return [
        Instance(item.label, (item,), item.group_id) if isinstance(item, Shape)
        else Instance(item[0], tuple(groups[item]), item[1])
        for item in order
    ]


@dataclass
class ImageRecord:
    path: Path  # absolute path of the image file
    rel: str  # path relative to the dataset root, "/"-separated: the image's stable key
    width: int | None = None
    height: int | None = None
    size_bytes: int = 0
    labels: list[str] = field(default_factory=list)  # image-level labels (classification)
    shapes: list[Shape] = field(default_factory=list)
    split: SplitName | None = None  # set when the dataset itself defines the split
    annotation_path: Path | None = None
    format: str | None = None  # "JPEG", "PNG" ... from the header (None if unreadable)
    header_error: str | None = None  # why the header could not be read (the health check reports it)

    def class_names(self) -> list[str]:
        """Every class this image carries (image labels first, then shape labels), without repeats."""
        seen: dict[str, None] = {}
        for label in self.labels:
            seen.setdefault(label, None)
        for shape in self.shapes:
            seen.setdefault(shape.label, None)
        return list(seen)

    def instances(self) -> list[Instance]:
        """The image's objects (grouped parts count once); see :func:`group_instances`."""
        return group_instances(self.shapes)


@dataclass
class Finding:
    severity: Severity
    code: str  # machine-readable, e.g. "corrupt_image", "box_outside_image"
    path: str  # the file it concerns (image or annotation)
    message: str  # a sentence a user can act on

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.message}"


@dataclass
class DatasetIndex:
    root: Path
    format: str  # "dice" | "yolo" | "imagefolder" | "coco"
    class_names: list[str]
    images: list[ImageRecord]
    findings: list[Finding] = field(default_factory=list)
    task_hint: str | None = None  # "classify" | "detect" | "segment" | "pose"
    keypoint_names: list[str] = field(default_factory=list)  # pose: point labels, in keypoint order
    source: Path | None = None  # what the user opened (a .zip, a data.yaml) when it differs from root

    def class_counts(self, split: str | None = None) -> dict[str, int]:
        """Images per class (an image with two boxes of one class counts once)."""
        counts: Counter[str] = Counter({name: 0 for name in self.class_names})
        for record in self.images:
            if split is not None and record.split != split:
                continue
            for name in record.class_names():
                counts[name] += 1
        return dict(counts)

    def object_counts(self, split: str | None = None) -> dict[str, int]:
        """Objects per class: an object drawn in several parts counts once; keypoints are not objects."""
        counts: Counter[str] = Counter({name: 0 for name in self.class_names})
        for record in self.images:
            if split is not None and record.split != split:
                continue
            counts.update(i.label for i in record.instances() if i.label in counts)
        return dict(counts)

    @property
    def has_predefined_split(self) -> bool:
        return any(record.split is not None for record in self.images)

    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]
