"""The dataset health report shown by the GUI and CLI and run by the job runner before training.

Shallow checks use only what indexing already read (headers, annotations) and cost microseconds per
image; annotations are checked per object (a labelme group's parts together); ``deep`` decodes every image to catch truncated files; ``duplicates`` hashes file contents.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from core.datasets.errors import DatasetError
from core.datasets.images import expected_format, limit_problem, load_image_rgb
from core.datasets.model import DatasetIndex, Finding, ImageRecord, Shape, union_box

Box = tuple[float, float, float, float]  # x1, y1, x2, y2
_EDGE_TOLERANCE = 1.0  # px: annotation tools put corners on the last pixel's far edge


def _record_findings(index: DatasetIndex, record: ImageRecord, known: set[str], keypoints: set[str]) -> list[Finding]:
    found: list[Finding] = []
    rel = record.rel
    if record.header_error is not None:
        found.append(Finding("error", "corrupt_image", rel, f"unreadable image: {record.header_error}"))
    else:
        problem = limit_problem(record.size_bytes, record.width, record.height)
        if problem is not None:
            found.append(Finding("error", "image_too_large", rel, problem))
        expected = expected_format(rel)
        if expected is not None and record.format is not None and record.format != expected:
            found.append(
                Finding("warning", "wrong_extension", rel, f"file is {record.format} but named {Path(rel).suffix}")
            )
    if not record.labels and not record.shapes:
        found.append(Finding("warning", "no_annotation", rel, "image has no annotation"))
    where = _annotation_rel(record.annotation_path, index.root) or rel
    for label in record.labels:
        if label not in known:
            found.append(Finding("error", "unknown_label", where, f"label '{label}' is not in the class list"))
    for shape in record.shapes:
        if shape.label not in known and shape.label not in keypoints:
            found.append(Finding("error", "unknown_label", where, f"label '{shape.label}' is not in the class list"))
    found.extend(_geometry_findings(record, where))
    return found


def _geometry_findings(record: ImageRecord, where: str) -> list[Finding]:
    """Points outside, parts without area, and objects outside the image. An object drawn in several
    parts (a labelme group) is checked as one: it is outside only when all of its parts are."""
    found: list[Finding] = []
    width, height = record.width, record.height
    for instance in record.instances():
        shape = instance.parts[0]
        if shape.shape_type == "point":
            found.extend(_point_findings(shape, where, width, height))
            continue
        # One box per part, computed once (20k images: this loop is most of the health check).
        parts = [(part, box) for part in instance.parts if (box := _area_box(part, where, found)) is not None]
        if parts and width is not None and height is not None:
            outside = _outside_finding(instance.label, parts, where, width, height)
            found.extend([outside] if outside is not None else [])
    return found


def _point_findings(shape: Shape, where: str, width: int | None, height: int | None) -> list[Finding]:
    if width is None or height is None:
        return []
    x, y = shape.points[0]
    if 0 <= x <= width and 0 <= y <= height:
        return []
    return [Finding("warning", "point_outside_image", where, f"point '{shape.label}' at ({x:.1f}, {y:.1f}) is outside the image")]


def _area_box(shape: Shape, where: str, found: list[Finding]) -> Box | None:
    """The part's box, or None (and a finding) when it has no area."""
    x1, y1, x2, y2 = box = shape.bbox()
    if x2 - x1 > 0 and y2 - y1 > 0:
        return box
    found.append(Finding("warning", "zero_area_box", where,
                         f"{shape.shape_type} '{shape.label}' has zero area ({x1:.1f}, {y1:.1f}, {x2:.1f}, {y2:.1f})"))
    return None


def _outside_finding(label: str, parts: list[tuple[Shape, Box]], where: str, width: int, height: int) -> Finding | None:
    """``parts``: an object's parts that have an area, with their boxes (the object is their union)."""
    boxes = [box for _part, box in parts]
    x1, y1, x2, y2 = union_box(boxes)
    tol = _EDGE_TOLERANCE
    if not (x1 < -tol or y1 < -tol or x2 > width + tol or y2 > height + tol):
        return None
    fully_out = all(_entirely_outside(box, width, height) for box in boxes)
    kind = parts[0][0].shape_type
    what = f"{kind} '{label}'" if len(parts) == 1 else f"object '{label}' ({len(parts)} parts)"
    return Finding(
        "error" if fully_out else "warning",
        "box_outside_image",
        where,
        f"{what} ({x1:.1f}, {y1:.1f}, {x2:.1f}, {y2:.1f}) is {'entirely ' if fully_out else ''}outside the "
        f"{width}x{height} image" + ("" if fully_out else " (it will be clipped)"),
    )


def _entirely_outside(box: Box, width: int, height: int) -> bool:
    x1, y1, x2, y2 = box
    return min(x2, width) - max(x1, 0) <= 0 or min(y2, height) - max(y1, 0) <= 0


def _annotation_rel(path: Path | None, root: Path) -> str | None:
    """``path`` relative to ``root``, "/"-separated; None when it is not under it. Readers build
    annotation paths from the root, so a string prefix answers; ``relative_to`` only otherwise."""
    if path is None:
        return None
    text, base = str(path), str(root)
    prefix = base if base.endswith(os.sep) else base + os.sep
    if text.startswith(prefix):
        return text[len(prefix):].replace(os.sep, "/")
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return None


def _decode_problem(record: ImageRecord) -> Finding | None:
    try:
        load_image_rgb(record.path)
    except DatasetError as exc:
        return Finding("error", "corrupt_image", record.rel, str(exc).split(": ", 1)[-1])
    return None


def _file_hash(path: Path) -> str | None:
    digest = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1024 * 1024):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def check_health(index: DatasetIndex, *, deep: bool = False, duplicates: bool = False) -> list[Finding]:
    """The reader's findings plus per-image checks; each finding names the file it concerns."""
    findings = list(index.findings)
    known = set(index.class_names)
    keypoints = set(index.keypoint_names)
    for record in index.images:
        findings.extend(_record_findings(index, record, known, keypoints))

    if deep:
        candidates = [r for r in index.images if r.header_error is None and limit_problem(r.size_bytes, r.width, r.height) is None]
        # Pillow releases the GIL while decoding, so threads use both cores.
        with ThreadPoolExecutor(max_workers=4) as pool:
            findings.extend(f for f in pool.map(_decode_problem, candidates) if f is not None)

    if duplicates:
        with ThreadPoolExecutor(max_workers=4) as pool:
            hashes = list(pool.map(_file_hash, [r.path for r in index.images]))
        first_by_hash: dict[str, str] = {}
        for record, digest in zip(index.images, hashes, strict=True):
            if digest is None:
                continue
            original = first_by_hash.setdefault(digest, record.rel)
            if original != record.rel:
                findings.append(
                    Finding("warning", "duplicate_image", record.rel, f"same content as {original}")
                )

    if not any(r.header_error is None for r in index.images):
        findings.append(Finding("error", "no_valid_images", str(index.root), "the dataset has no readable image"))
    return findings


def summarize(findings: list[Finding]) -> dict[str, int]:
    """Count of findings per severity (for a one-line summary)."""
    summary = {"error": 0, "warning": 0, "info": 0}
    for finding in findings:
        summary[finding.severity] = summary.get(finding.severity, 0) + 1
    return summary
