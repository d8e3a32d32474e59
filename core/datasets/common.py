"""Helpers shared by the format readers: listing files, building image records, parsing shapes."""

from __future__ import annotations

import math
import os
import posixpath
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

from core.datasets.errors import DatasetError
from core.datasets.images import is_image_file, read_image_header_and_size
from core.datasets.model import Finding, ImageRecord, Shape, ShapeType, SplitName

SPLIT_DIR_NAMES: dict[str, SplitName] = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
# labelme's conventional pseudo-labels: never classes.
IGNORE_LABEL = "__ignore__"
PSEUDO_LABELS = frozenset({IGNORE_LABEL, "_background_", "__background__"})
CLASS_LIST_FILES = ("classes.txt", "labels.txt")
MAPPING_FILE = "classes.json"  # what our converters write next to their output
REPORT_FILE = "conversion.json"
METADATA_FILES = frozenset({MAPPING_FILE, REPORT_FILE})  # JSON files that are never annotations

_MIN_POINTS: dict[str, int] = {
    "rectangle": 2,
    "polygon": 3,
    "circle": 2,
    "point": 1,
    "line": 2,
    "linestrip": 2,
    "mask": 2,
}
NON_TRAINING_SHAPES = frozenset({"line", "linestrip", "mask"})


def walk_files(root: Path) -> list[str]:
    """Every file under root as a sorted "/"-separated relative path.

    Hidden entries and macOS resource forks are skipped; symlinked files are followed (our own
    converters may produce them), symlinked folders are not (no loops).
    """
    found: list[str] = []
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            entries = list(os.scandir(root / rel_dir if rel_dir else root))
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            if name.startswith(".") or name == "__MACOSX":
                continue
            rel = f"{rel_dir}/{name}" if rel_dir else name
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(rel)
                elif entry.is_file():
                    found.append(rel)
            except OSError:
                continue
    found.sort()
    return found


def image_files(files: list[str]) -> list[str]:
    return [rel for rel in files if is_image_file(rel)]


def split_from_rel(rel: str) -> SplitName | None:
    """The split a path's folders name (``train/``, ``images/val/``, ``valid/``), if any."""
    for part in rel.split("/")[:-1]:
        split = SPLIT_DIR_NAMES.get(part.lower())
        if split is not None:
            return split
    return None


def make_record(root: Path, rel: str, path: Path | None = None) -> ImageRecord:
    """An ImageRecord with size and format from the header; header problems are kept, not raised."""
    # String paths on the hot path: pathlib's parsing costs more than the header read itself.
    path_str = str(path) if path is not None else f"{root}{os.sep}{rel}"
    record = ImageRecord(path=path if path is not None else Path(path_str), rel=rel)
    try:
        record.width, record.height, record.format, record.size_bytes = read_image_header_and_size(path_str)
    except DatasetError as exc:
        # The message starts with the path; the finding names the file separately.
        record.header_error = str(exc).split(": ", 1)[-1]
        try:
            record.size_bytes = os.stat(path_str).st_size
        except OSError:
            pass
    return record


_RECORD_CHUNK = 2000


def _make_records(root: Path, rels: list[str]) -> list[ImageRecord]:
    return [make_record(root, rel) for rel in rels]


def start_records(root: Path, rels: list[str]) -> Callable[[], dict[str, ImageRecord]]:
    """Read image headers on a worker thread while the caller parses annotations.

    File opens and reads release the GIL, so header reading overlaps JSON parsing. Returns a function
    that waits and gives {rel: record}.
    """
    if len(rels) < _RECORD_CHUNK:
        done = {record.rel: record for record in _make_records(root, rels)}
        return lambda: done
    pool = ThreadPoolExecutor(max_workers=1)
    futures: list[Future[list[ImageRecord]]] = [
        pool.submit(_make_records, root, rels[i : i + _RECORD_CHUNK]) for i in range(0, len(rels), _RECORD_CHUNK)
    ]

    def collect() -> dict[str, ImageRecord]:
        try:
            return {record.rel: record for future in futures for record in future.result()}
        finally:
            pool.shutdown()

    return collect


def inside(rel: str) -> str | None:
    """Normalise a relative path; None if it escapes its base (``..`` above it, or absolute)."""
    rel = rel.replace("\\", "/")
    if rel.startswith("/") or (len(rel) > 1 and rel[1] == ":"):
        return None
    norm = posixpath.normpath(rel)
    if norm == ".." or norm.startswith("../") or norm == ".":
        return None
    return norm


def read_class_list(root: Path) -> list[str] | None:
    """Class order a dataset declares itself (classes.json from our converters, classes.txt, labels.txt)."""
    import json

    mapping = root / MAPPING_FILE
    if mapping.is_file():
        try:
            data = json.loads(mapping.read_text(encoding="utf-8"))
            names = data.get("names") if isinstance(data, dict) else None
            if isinstance(names, list) and all(isinstance(n, str) for n in names):
                return list(names)
        except (OSError, ValueError):
            pass
    for name in CLASS_LIST_FILES:
        path = root / name
        if path.is_file():
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError):
                continue
            names = [line.strip() for line in lines if line.strip() and line.strip() not in PSEUDO_LABELS]
            if names:
                return names
    return None


def parse_shape(raw: Any, where: str, findings: list[Finding]) -> Shape | None:
    """One labelme/DICE shape dict → Shape, or None with a finding explaining why it was dropped."""
    if not isinstance(raw, dict):
        findings.append(Finding("error", "bad_shape", where, f"a shape is not an object: {raw!r:.60}"))
        return None
    label = raw.get("label")
    if not isinstance(label, str) or not label.strip():
        findings.append(Finding("error", "bad_shape", where, "a shape has no label"))
        return None
    label = label.strip()
    raw_type = raw.get("shape_type") or "polygon"  # labelme's default when the key is missing
    if not isinstance(raw_type, str):
        findings.append(Finding("error", "unknown_shape_type", where, f"shape '{label}': shape_type {raw_type!r}"))
        return None
    shape_type = raw_type.strip().lower()
    if shape_type not in _MIN_POINTS:
        findings.append(
            Finding(
                "error",
                "unknown_shape_type",
                where,
                f"shape '{label}' has unknown shape_type {raw_type!r} (skipped; expected one of "
                f"{', '.join(sorted(_MIN_POINTS))})",
            )
        )
        return None
    if shape_type != raw_type:
        findings.append(
            Finding("info", "shape_type_case", where, f"shape '{label}': shape_type {raw_type!r} read as '{shape_type}'")
        )
    points_raw = raw.get("points")
    try:
        if not isinstance(points_raw, list):
            raise ValueError("points is not a list")
        points = [(float(x), float(y)) for x, y in points_raw]
        if not all(math.isfinite(x) and math.isfinite(y) for x, y in points):
            raise ValueError("a coordinate is not finite")
    except (TypeError, ValueError) as exc:
        problem = str(exc) if isinstance(exc, ValueError) and "not" in str(exc) else f"points {points_raw!r:.60} are not [[x, y], ...]"
        findings.append(Finding("error", "bad_points", where, f"shape '{label}' ({shape_type}): {problem} (skipped)"))
        return None
    if len(points) < _MIN_POINTS[shape_type]:
        findings.append(
            Finding(
                "error",
                "bad_points",
                where,
                f"shape '{label}' ({shape_type}) has {len(points)} point(s), needs at least "
                f"{_MIN_POINTS[shape_type]} (skipped)",
            )
        )
        return None
    group_id = raw.get("group_id")
    if not isinstance(group_id, int) or isinstance(group_id, bool):
        group_id = None
    flags_raw = raw.get("flags")
    flags = {str(k): bool(v) for k, v in flags_raw.items()} if isinstance(flags_raw, dict) else {}
    return Shape(label=label, shape_type=cast(ShapeType, shape_type), points=points, group_id=group_id, flags=flags)


def task_hint_for(records: list[ImageRecord]) -> str | None:
    """classify (labels only), pose (grouped points), segment (polygons), detect (boxes)."""
    types: set[str] = set()
    grouped_points = False
    has_labels = False
    for record in records:
        has_labels = has_labels or bool(record.labels)
        for shape in record.shapes:
            types.add(shape.shape_type)
            if shape.shape_type == "point" and shape.group_id is not None:
                grouped_points = True
    if grouped_points and ("rectangle" in types or "polygon" in types):
        return "pose"
    if "polygon" in types:
        return "segment"
    if types & {"rectangle", "circle"}:
        return "detect"
    if has_labels:
        return "classify"
    return None


def classes_and_keypoints(records: list[ImageRecord], task: str | None) -> tuple[list[str], list[str]]:
    """Sorted class names and, for pose, sorted keypoint (grouped point) names."""
    classes: set[str] = set()
    keypoints: set[str] = set()
    for record in records:
        classes.update(record.labels)
        for shape in record.shapes:
            if task == "pose" and shape.shape_type == "point" and shape.group_id is not None:
                keypoints.add(shape.label)
            else:
                classes.add(shape.label)
    return sorted(classes), sorted(keypoints)
