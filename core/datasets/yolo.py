"""Ultralytics YOLO reader (detect, segment and pose label files).

The user's YAML is read with ``yaml.safe_load`` for class names, split folders and ``kpt_shape``
only. It is never passed to Ultralytics: its ``download:`` key can hold Python that Ultralytics
would ``exec`` (reliability matrix row 26); our converters always write a fresh data.yaml.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any

import yaml

from core.datasets.common import (
    image_files,
    inside,
    make_record,
    read_class_list,
    split_from_rel,
    walk_files,
)
from core.datasets.model import DatasetIndex, Finding, ImageRecord, Shape, SplitName

_SPLIT_KEYS: dict[str, SplitName] = {"train": "train", "val": "val", "test": "test"}
# Coordinates a little outside [0, 1] are rounding noise from exporters, not errors.
_TOLERANCE = 1e-3


def find_yaml(root: Path) -> Path | None:
    candidates = sorted(p for p in root.iterdir() if p.suffix.lower() in (".yaml", ".yml") and p.is_file())
    for path in candidates:
        if path.stem.lower() in ("data", "dataset"):
            return path
    return candidates[0] if candidates else None


def parse_names(raw: Any) -> list[str] | None:
    """names as a list, or a dict {id: name} with ids 0..n-1 (keys may be strings of digits)."""
    if isinstance(raw, list):
        return [str(name) for name in raw]
    if isinstance(raw, dict):
        try:
            by_id = {int(k): str(v) for k, v in raw.items()}
        except (TypeError, ValueError):
            return None
        if sorted(by_id) != list(range(len(by_id))):
            return None
        return [by_id[i] for i in range(len(by_id))]
    return None


def label_rel_for(image_rel: str) -> str:
    """Ultralytics' rule: the last ``images`` folder becomes ``labels``, the suffix ``.txt``."""
    parts = image_rel.split("/")
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return posixpath.splitext("/".join(parts))[0] + ".txt"


def _read_yaml(path: Path, findings: list[Finding], root: Path) -> dict[str, Any]:
    rel = path.relative_to(root).as_posix()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        findings.append(Finding("error", "invalid_yaml", rel, f"cannot read the dataset YAML ({exc})"))
        return {}
    if not isinstance(data, dict):
        findings.append(Finding("error", "invalid_yaml", rel, "the dataset YAML is not a mapping"))
        return {}
    if "download" in data:
        findings.append(
            Finding("info", "yaml_download_ignored", rel, "the YAML's download: entry is ignored (never executed)")
        )
    return data


def _yaml_split_dirs(data: dict[str, Any], root: Path) -> list[tuple[str, SplitName]]:
    """(folder prefix, split) for the YAML's train/val/test entries that are folders inside root."""
    base = ""
    path_value = data.get("path")
    if isinstance(path_value, str) and not Path(path_value).is_absolute():
        base = inside(path_value) or ""
    prefixes: list[tuple[str, SplitName]] = []
    for key, split in _SPLIT_KEYS.items():
        values = data.get(key)
        for value in values if isinstance(values, list) else [values]:
            if not isinstance(value, str):
                continue
            rel = inside(posixpath.join(base, value)) if base else inside(value)
            if rel is None:
                rel = inside(value)
            if rel is not None and (root / rel).is_dir():
                prefixes.append((rel + "/", split))
    return prefixes


def read_yolo(root: Path, files: list[str] | None = None) -> DatasetIndex:
    files = walk_files(root) if files is None else files
    findings: list[Finding] = []
    yaml_path = find_yaml(root)
    data = _read_yaml(yaml_path, findings, root) if yaml_path else {}
    names = parse_names(data.get("names")) if data else None
    if data and data.get("names") is not None and names is None:
        findings.append(
            Finding("error", "invalid_yaml", yaml_path.name if yaml_path else "", "names is neither a list nor {id: name}")
        )
    if names is None:
        names = read_class_list(root)
    kpt_shape = data.get("kpt_shape") if data else None
    kpt_count, kpt_dims = 0, 0
    if isinstance(kpt_shape, list) and len(kpt_shape) == 2 and all(isinstance(v, int) for v in kpt_shape):
        kpt_count, kpt_dims = kpt_shape
    kpt_names_raw = data.get("kpt_names") if data else None
    keypoint_names = [f"kp{i}" for i in range(kpt_count)]
    if isinstance(kpt_names_raw, list) and len(kpt_names_raw) == kpt_count:
        keypoint_names = [str(n) for n in kpt_names_raw]

    file_set = set(files)
    split_dirs = _yaml_split_dirs(data, root) if data else []
    records: list[ImageRecord] = []
    used_labels: set[str] = set()
    max_class = -1
    task_types: set[str] = set()
    for rel in image_files(files):
        record = make_record(root, rel)
        record.split = split_from_rel(rel)
        for prefix, split in split_dirs:
            if rel.startswith(prefix):
                record.split = split
        label_rel = label_rel_for(rel)
        if label_rel in file_set:
            used_labels.add(label_rel)
            record.annotation_path = root / label_rel
            max_class = max(
                max_class,
                _read_label_file(root, label_rel, record, names, kpt_count, kpt_dims, keypoint_names, findings, task_types),
            )
        records.append(record)

    for rel in files:
        if rel.endswith(".txt") and "labels" in rel.split("/")[:-1] and rel not in used_labels:
            findings.append(Finding("error", "missing_image", rel, "annotation without image: no image for this label file"))

    if names is None:
        # No YAML or class list: ids are the only names we have.
        names = [str(i) for i in range(max_class + 1)]
        for record in records:
            for shape in record.shapes:
                if shape.label.startswith("#"):
                    shape.label = shape.label[1:]
    if "pose" in task_types:
        task = "pose"
    elif "segment" in task_types:
        task = "segment"
    else:
        task = "detect"
    return DatasetIndex(
        root=root,
        format="yolo",
        class_names=names,
        images=records,
        findings=findings,
        task_hint=task,
        keypoint_names=keypoint_names if task == "pose" else [],
        source=yaml_path,
    )


def _read_label_file(
    root: Path,
    label_rel: str,
    record: ImageRecord,
    names: list[str] | None,
    kpt_count: int,
    kpt_dims: int,
    keypoint_names: list[str],
    findings: list[Finding],
    task_types: set[str],
) -> int:
    """Parse one label file into record.shapes (pixels); returns the largest class id seen."""
    try:
        text = (root / label_rel).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        findings.append(Finding("error", "unreadable_file", label_rel, f"cannot read the label file ({exc})"))
        return -1
    width, height = record.width, record.height
    max_class = -1
    group = 0
    for line_no, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"line {line_no}"
        try:
            class_id_f = float(fields[0])
            values = [float(v) for v in fields[1:]]
        except ValueError:
            findings.append(Finding("error", "bad_label_line", label_rel, f"{where}: not numbers: {line.strip()!r:.60}"))
            continue
        if class_id_f != int(class_id_f) or class_id_f < 0:
            findings.append(Finding("error", "bad_label_line", label_rel, f"{where}: class id {fields[0]!r} is not an integer"))
            continue
        class_id = int(class_id_f)
        if names is not None and class_id >= len(names):
            findings.append(
                Finding(
                    "error",
                    "class_out_of_range",
                    label_rel,
                    f"{where}: class id {class_id} is out of range (the dataset has {len(names)} classes)",
                )
            )
            continue
        n = len(values)
        kpt_len = kpt_count * kpt_dims
        if kpt_count and n == 4 + kpt_len:
            kind = "pose"
        elif n == 4:
            kind = "detect"
        elif n >= 6 and n % 2 == 0:
            kind = "segment"
        else:
            findings.append(
                Finding(
                    "error",
                    "bad_label_line",
                    label_rel,
                    f"{where}: {n + 1} numbers; expected 5 (class x y w h), class + 3 or more x y pairs, "
                    f"or a pose line of {5 + kpt_len}",
                )
            )
            continue
        coords = values
        if kind == "pose":  # the boxes and the keypoints' x y, not their visibility flags
            coords = values[:4] + [v for k in range(kpt_count) for v in values[4 + k * kpt_dims : 6 + k * kpt_dims]]
        if any(v < -_TOLERANCE or v > 1 + _TOLERANCE for v in coords if v == v):
            findings.append(
                Finding("warning", "box_outside_image", label_rel, f"{where}: coordinates outside 0..1 (clipped)")
            )
        max_class = max(max_class, class_id)
        if width is None or height is None:
            continue  # the image header is unreadable: the health check reports the image
        label = names[class_id] if names is not None else f"#{class_id}"
        task_types.add(kind)
        if kind == "segment":
            points = [(values[i] * width, values[i + 1] * height) for i in range(0, n, 2)]
            record.shapes.append(Shape(label=label, shape_type="polygon", points=points))
            continue
        xc, yc, w, h = values[:4]
        box = [((xc - w / 2) * width, (yc - h / 2) * height), ((xc + w / 2) * width, (yc + h / 2) * height)]
        if kind == "detect":
            record.shapes.append(Shape(label=label, shape_type="rectangle", points=box))
            continue
        group += 1
        record.shapes.append(Shape(label=label, shape_type="rectangle", points=box, group_id=group))
        for k in range(kpt_count):
            x, y = values[4 + k * kpt_dims], values[5 + k * kpt_dims]
            visible = values[6 + k * kpt_dims] if kpt_dims == 3 else 1.0
            if visible > 0 and (x > 0 or y > 0):
                record.shapes.append(
                    Shape(label=keypoint_names[k], shape_type="point", points=[(x * width, y * height)], group_id=group)
                )
    return max_class
