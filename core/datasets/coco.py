"""COCO instances reader (bbox, polygon and RLE segmentation).

Classes follow category id order. Polygon segmentations become polygons (an annotation with several
polygons becomes its parts with one labelme ``group_id``: one object); RLE masks (crowd regions) are
kept as their bounding box, and a finding says so.
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Any

from core.datasets.common import SPLIT_DIR_NAMES, image_files, inside, make_record, walk_files
from core.datasets.model import DatasetIndex, Finding, ImageRecord, Shape, SplitName

_HEAD_BYTES = 64 * 1024
_MANY_JSON = 10


def looks_like_coco(path: Path) -> bool:
    """Cheap test on the first 64 KB: COCO has top-level "annotations"/"images", DICE has "shapes"."""
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD_BYTES).decode("utf-8", errors="ignore")
    except OSError:
        return False
    if '"shapes"' in head:
        return False
    return '"annotations"' in head or ('"images"' in head and '"categories"' in head)


def coco_json_files(root: Path, files: list[str]) -> list[str]:
    """COCO annotation files: JSONs at most two folders deep that look like COCO.

    A folder of many JSONs is a DICE/labelme folder: peeking at its first few is enough, so a
    20,000-annotation dataset is not opened twice.
    """
    by_dir: dict[str, list[str]] = {}
    for rel in files:
        if rel.endswith(".json") and rel.count("/") <= 2:
            by_dir.setdefault(posixpath.dirname(rel), []).append(rel)
    found: list[str] = []
    for rels in by_dir.values():
        if len(rels) > _MANY_JSON and not any(looks_like_coco(root / rel) for rel in rels[:3]):
            continue
        found.extend(rel for rel in rels if looks_like_coco(root / rel))
    return sorted(found)


def _split_for(json_rel: str) -> SplitName | None:
    name = posixpath.basename(json_rel).lower()
    for word, split in SPLIT_DIR_NAMES.items():
        if word in name:
            return split
    for part in json_rel.split("/")[:-1]:
        from_dir = SPLIT_DIR_NAMES.get(part.lower())
        if from_dir:
            return from_dir
    return None


def _find_image(file_name: str, json_rel: str, split_hint: SplitName | None, images: set[str], by_name: dict[str, str]) -> str | None:
    name = inside(file_name)
    if name is None:
        return None
    json_dir = posixpath.dirname(json_rel)
    parent = posixpath.dirname(json_dir)
    candidates = [posixpath.join(json_dir, name), name, posixpath.join("images", name)]
    candidates.append(posixpath.join(parent, "images", name) if parent else posixpath.join("images", name))
    if split_hint:
        candidates += [posixpath.join("images", split_hint, name), posixpath.join(split_hint, name)]
    for candidate in candidates:
        norm = inside(candidate)
        if norm is not None and norm in images:
            return norm
    return by_name.get(posixpath.basename(name))


def _next_group_id(record: ImageRecord) -> int:
    """A labelme group_id not used yet in this image."""
    return 1 + max((shape.group_id for shape in record.shapes if shape.group_id is not None), default=0)


def read_coco(root: Path, files: list[str] | None = None) -> DatasetIndex:
    files = walk_files(root) if files is None else files
    findings: list[Finding] = []
    rels = image_files(files)
    images = set(rels)
    by_name: dict[str, str] = {}
    duplicate_names: set[str] = set()
    for rel in rels:
        base = posixpath.basename(rel)
        if base in by_name:
            duplicate_names.add(base)
        by_name[base] = rel
    for base in duplicate_names:
        del by_name[base]  # ambiguous: only exact paths may match these

    categories: dict[int, str] = {}
    records: dict[str, ImageRecord] = {}
    for json_rel in coco_json_files(root, files):
        _read_one(root, json_rel, images, by_name, categories, records, findings)

    for rel in rels:
        if rel not in records:
            record = make_record(root, rel)
            records[rel] = record
            findings.append(
                Finding("warning", "image_not_listed", rel, "image is not listed in any COCO annotation file")
            )
    class_names: list[str] = []
    for cat_id in sorted(categories):
        if categories[cat_id] not in class_names:
            class_names.append(categories[cat_id])
    ordered = [records[rel] for rel in sorted(records)]
    has_polygons = any(s.shape_type == "polygon" for r in ordered for s in r.shapes)
    return DatasetIndex(
        root=root,
        format="coco",
        class_names=class_names,
        images=ordered,
        findings=findings,
        task_hint="segment" if has_polygons else "detect",
    )


def _read_one(
    root: Path,
    json_rel: str,
    images: set[str],
    by_name: dict[str, str],
    categories: dict[int, str],
    records: dict[str, ImageRecord],
    findings: list[Finding],
) -> None:
    try:
        data = json.loads((root / json_rel).read_bytes().decode("utf-8-sig"))
    except json.JSONDecodeError as exc:
        findings.append(
            Finding("error", "invalid_json", json_rel, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")
        )
        return
    except (OSError, UnicodeDecodeError) as exc:
        findings.append(Finding("error", "unreadable_file", json_rel, f"cannot read ({exc})"))
        return
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        findings.append(Finding("error", "invalid_coco", json_rel, "not a COCO file: no 'images' list"))
        return
    for cat in data.get("categories") or []:
        if isinstance(cat, dict) and isinstance(cat.get("id"), int) and isinstance(cat.get("name"), str):
            categories.setdefault(cat["id"], cat["name"])
    split_hint = _split_for(json_rel)
    by_id: dict[Any, ImageRecord] = {}
    for entry in data["images"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str):
            findings.append(Finding("error", "invalid_coco", json_rel, f"image entry without file_name: {entry!r:.80}"))
            continue
        rel = _find_image(entry["file_name"], json_rel, split_hint, images, by_name)
        if rel is None:
            findings.append(
                Finding(
                    "error",
                    "missing_image",
                    json_rel,
                    f"image id {entry.get('id')!r}: file {entry['file_name']!r} not found in the dataset folder",
                )
            )
            continue
        record = records.get(rel)
        if record is None:
            record = make_record(root, rel)
            record.annotation_path = root / json_rel
            record.split = split_hint
            records[rel] = record
        by_id[entry.get("id")] = record

    rle_count = 0
    for ann in data.get("annotations") or []:
        if not isinstance(ann, dict):
            continue
        ann_id = ann.get("id")
        record = by_id.get(ann.get("image_id"))
        if record is None:
            findings.append(
                Finding(
                    "error",
                    "missing_image",
                    json_rel,
                    f"annotation {ann_id!r} points at image id {ann.get('image_id')!r}, which is not in 'images'",
                )
            )
            continue
        label = categories.get(ann.get("category_id"))  # type: ignore[arg-type]
        if label is None:
            findings.append(
                Finding(
                    "error",
                    "unknown_label",
                    json_rel,
                    f"annotation {ann_id!r} has category_id {ann.get('category_id')!r}, not in 'categories'",
                )
            )
            continue
        segmentation = ann.get("segmentation")
        polygons = []
        if isinstance(segmentation, list):
            for part in segmentation:
                if isinstance(part, list) and len(part) >= 6 and len(part) % 2 == 0:
                    try:
                        polygons.append([(float(part[i]), float(part[i + 1])) for i in range(0, len(part), 2)])
                    except (TypeError, ValueError):
                        continue
        elif isinstance(segmentation, dict):
            rle_count += 1
        if polygons:
            # An object in several polygons is one labelme group (one object, several parts).
            group_id = _next_group_id(record) if len(polygons) > 1 else None
            record.shapes.extend(Shape(label=label, shape_type="polygon", points=points, group_id=group_id)
                                 for points in polygons)
            continue
        bbox = ann.get("bbox")
        try:
            x, y, w, h = (float(v) for v in bbox)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            findings.append(Finding("error", "bad_points", json_rel, f"annotation {ann_id!r} has no usable bbox or polygon"))
            continue
        record.shapes.append(Shape(label=label, shape_type="rectangle", points=[(x, y), (x + w, y + h)]))
    if rle_count:
        findings.append(
            Finding("info", "rle_as_box", json_rel, f"{rle_count} RLE mask(s) kept as their bounding box")
        )
