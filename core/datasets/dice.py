"""The DICE / labelme format, read and written here only.

Reading: two layouts, DICE's (``images/`` + ``annotations/<stem>.json``, optionally under ``train/``,
``val/``) and labelme's (each JSON beside its image). ``imagePath`` is resolved relative to the
JSON, as labelme does, and must stay inside the dataset root; DICE's own files store a bare file
name relative to ``images/``, so that is tried next, then an image with the JSON's stem.

Writing: :func:`labelme_shape`, :func:`labelme_document` and :func:`labelme_text` build the one
document shape the converter (``to_dice``) and the prediction export both write, so a file the app
exports opens in labelme and reads back as a dataset.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import posixpath
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypedDict

from core.datasets.common import (
    IGNORE_LABEL,
    METADATA_FILES,
    NON_TRAINING_SHAPES,
    PSEUDO_LABELS,
    classes_and_keypoints,
    image_files,
    inside,
    make_record,
    parse_shape,
    read_class_list,
    split_from_rel,
    start_records,
    task_hint_for,
    walk_files,
)
from core.datasets.model import DatasetIndex, Finding, ImageRecord, SplitName
from core.files import atomic_write_bytes, sha256_bytes

LABELME_VERSION = "5.0.1"


class LabelmeShape(TypedDict):
    label: str
    points: list[list[float]]
    group_id: int | None
    description: str
    shape_type: str
    flags: dict[str, bool]


class LabelmeDocument(TypedDict):
    version: str
    flags: dict[str, bool]
    shapes: list[LabelmeShape]
    imagePath: str
    imageData: None
    imageHeight: int | None
    imageWidth: int | None


def labelme_shape(label: str, points: Iterable[tuple[float, float]], shape_type: str, *, group_id: int | None = None,
                  description: str = "", flags: Mapping[str, bool] | None = None) -> LabelmeShape:
    """One labelme shape; coordinates rounded to 1/100 pixel."""
    return {
        "label": label,
        "points": [[round(x, 2), round(y, 2)] for x, y in points],
        "group_id": group_id,
        "description": description,
        "shape_type": shape_type,
        "flags": dict(flags or {}),
    }


def labelme_document(shapes: list[LabelmeShape], image_path: str, width: int | None, height: int | None,
                     flags: Mapping[str, bool] | None = None) -> LabelmeDocument:
    """A labelme document without embedded image data; ``image_path`` is relative to the JSON."""
    return {
        "version": LABELME_VERSION,
        "flags": dict(flags or {}),
        "shapes": shapes,
        "imagePath": image_path,
        "imageData": None,
        "imageHeight": height,
        "imageWidth": width,
    }


def labelme_text(document: LabelmeDocument) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)


def write_labelme(document: LabelmeDocument, target: Path) -> Path:
    """Write ``document`` to ``target`` atomically (an export never leaves half a JSON)."""
    atomic_write_bytes(target, labelme_text(document).encode("utf-8"))
    return target


def is_dice_json(data: Any) -> bool:
    return isinstance(data, dict) and ("shapes" in data or "imagePath" in data)


def _stem_key(rel: str) -> tuple[str, str]:
    directory, name = posixpath.split(rel)
    return directory, posixpath.splitext(name)[0]


def _images_dir_for(json_rel: str) -> str | None:
    """For a JSON under an ``annotations`` folder: the sibling ``images`` folder (DICE layout)."""
    parts = json_rel.split("/")[:-1]
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "annotations":
            return "/".join([*parts[:i], "images", *parts[i + 1 :]])
    return None


def _embedded_image(data: str, rel: str) -> Path | None:
    """Write base64 imageData to the cache (never into the user's folder) when the file is missing."""
    from core.paths import cache_dir

    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not raw:
        return None
    digest = sha256_bytes(raw)[:24]
    target_dir = cache_dir() / "datasets" / "embedded"
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{digest}{posixpath.splitext(rel)[1].lower() or '.img'}"
    if not target.exists():
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_bytes(raw)
        tmp.replace(target)
    return target


def _load_json(root: Path, rel: str, findings: list[Finding]) -> dict[str, Any] | None:
    try:
        with open(f"{root}{os.sep}{rel}", "rb") as f:
            text = f.read().decode("utf-8-sig")
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        findings.append(
            Finding("error", "invalid_json", rel, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")
        )
        return None
    except UnicodeDecodeError as exc:
        findings.append(Finding("error", "invalid_json", rel, f"not UTF-8 text ({exc.reason} at byte {exc.start})"))
        return None
    except OSError as exc:
        findings.append(Finding("error", "unreadable_file", rel, f"cannot read ({exc.strerror or exc})"))
        return None
    if not is_dice_json(data):
        findings.append(Finding("warning", "not_dice_json", rel, "JSON file is not a DICE/labelme annotation (ignored)"))
        return None
    return data


def _resolve_image(
    json_rel: str,
    data: dict[str, Any],
    images: set[str],
    by_stem: dict[tuple[str, str], str],
    findings: list[Finding],
    by_folded: dict[str, str] | None = None,
) -> tuple[str | None, bool]:
    """(image rel, escaped). ``escaped`` means imagePath points outside the root: the JSON is refused.
    ``by_folded`` (case-folded rel → rel) finds an image whose imagePath was written on a
    case-insensitive file system (Windows, macOS) in another letter case than the file has here."""
    json_dir = posixpath.dirname(json_rel)
    images_dir = _images_dir_for(json_rel)
    image_path = data.get("imagePath")
    if isinstance(image_path, str) and image_path.strip():
        image_path = image_path.strip().replace("\\", "/")
        if image_path.startswith("/") or (len(image_path) > 1 and image_path[1] == ":"):
            findings.append(
                Finding("error", "image_path_escape", json_rel, f"imagePath {image_path!r} is absolute (refused)")
            )
            return None, True
        candidate = inside(posixpath.join(json_dir, image_path)) if json_dir else inside(image_path)
        if candidate is None:
            findings.append(
                Finding(
                    "error",
                    "image_path_escape",
                    json_rel,
                    f"imagePath {image_path!r} points outside the dataset folder (refused)",
                )
            )
            return None, True
        if candidate in images:  # the usual case: no fallback names to build
            return candidate, False
        candidates: list[str | None] = [candidate]
        if images_dir is not None:
            candidates += [inside(posixpath.join(images_dir, name)) for name in (image_path, posixpath.basename(image_path))]
        found = _first_image(candidates, images, by_folded or {})
        if found is not None:
            return found, False
    stem = posixpath.splitext(posixpath.basename(json_rel))[0]
    for directory in [images_dir, json_dir] if images_dir is not None else [json_dir]:
        match = by_stem.get((directory, stem))
        if match is not None:
            return match, False
    return None, False


def _first_image(candidates: list[str | None], images: set[str], by_folded: dict[str, str]) -> str | None:
    """The first candidate that is an image, exactly, else in another letter case."""
    for candidate in candidates:
        if candidate is not None and candidate in images:
            return candidate
    for candidate in candidates:
        if candidate is not None and candidate.casefold() in by_folded:
            return by_folded[candidate.casefold()]
    return None


def _folded_names(image_rels: list[str]) -> dict[str, str]:
    """Case-folded rel → rel, for names that stay unique when folded (two files differing only in case
    are ambiguous: neither is guessed)."""
    folded: dict[str, list[str]] = {}
    for rel in image_rels:
        folded.setdefault(rel.casefold(), []).append(rel)
    return {key: rels[0] for key, rels in folded.items() if len(rels) == 1}


def read_dice(root: Path, files: list[str] | None = None) -> DatasetIndex:
    files = walk_files(root) if files is None else files
    findings: list[Finding] = []
    image_rels = image_files(files)
    images = set(image_rels)
    by_stem: dict[tuple[str, str], str] = {}
    for rel in image_rels:
        by_stem.setdefault(_stem_key(rel), rel)
    by_folded = _folded_names(image_rels)
    json_rels = [rel for rel in files if rel.endswith(".json") and rel not in METADATA_FILES]

    collect_headers = start_records(root, image_rels)
    records: dict[str, ImageRecord] = {}
    pending: list[tuple[str, dict[str, Any], str]] = []  # (image rel, JSON, JSON rel): headers come later
    annotated_by: dict[str, str] = {}
    ignored: set[str] = set()
    for json_rel in json_rels:
        data = _load_json(root, json_rel, findings)
        if data is None:
            continue
        image_rel, escaped = _resolve_image(json_rel, data, images, by_stem, findings, by_folded)
        if escaped:
            continue
        record: ImageRecord | None = None
        if image_rel is None:
            embedded = data.get("imageData")
            image_path = data.get("imagePath")
            if isinstance(embedded, str) and embedded and isinstance(image_path, str):
                target_rel = inside(posixpath.join(posixpath.dirname(json_rel), image_path.replace("\\", "/")))
                cached = _embedded_image(embedded, target_rel or json_rel)
                if cached is not None and target_rel is not None:
                    image_rel = target_rel
                    record = make_record(root, image_rel, cached)
                    findings.append(
                        Finding("info", "embedded_image", json_rel, "image file missing; using the imageData embedded in the JSON")
                    )
            if image_rel is None:
                findings.append(
                    Finding(
                        "error",
                        "missing_image",
                        json_rel,
                        f"annotation without image: imagePath {data.get('imagePath')!r} not found",
                    )
                )
                continue
        if image_rel in annotated_by:
            findings.append(
                Finding(
                    "warning",
                    "duplicate_annotation",
                    json_rel,
                    f"{image_rel} is already annotated by {annotated_by[image_rel]} (this file ignored)",
                )
            )
            continue
        annotated_by[image_rel] = json_rel
        if record is not None:
            if _annotate(root, record, data, json_rel, findings, ignored):
                records[image_rel] = record
        else:
            pending.append((image_rel, data, json_rel))

    headers = collect_headers()
    # Popped one by one, so each parsed JSON is freed right after use: released all at once when
    # this function returned, 20,000 documents took ~50 ms of deallocation under the GIL, a stall
    # for a GUI thread waiting for it.
    pending.reverse()
    while pending:
        image_rel, data, json_rel = pending.pop()
        record = headers[image_rel]
        if _annotate(root, record, data, json_rel, findings, ignored):
            records[image_rel] = record
        del data

    for rel in image_rels:
        if rel not in records and rel not in ignored:
            records[rel] = headers[rel]

    ordered = [records[rel] for rel in sorted(records)]
    _apply_splits(root, ordered, findings)
    task = task_hint_for(ordered)
    class_names, keypoints = classes_and_keypoints(ordered, task)
    declared = read_class_list(root)
    if declared:
        # The dataset's own class list wins: other labels are reported by the health check.
        class_names = declared
    return DatasetIndex(
        root=root,
        format="dice",
        class_names=class_names,
        images=ordered,
        findings=findings,
        task_hint=task,
        keypoint_names=keypoints,
    )


def _annotate(
    root: Path, record: ImageRecord, data: dict[str, Any], json_rel: str, findings: list[Finding], ignored: set[str]
) -> bool:
    """Fill a record from its JSON; False if the image is excluded (flag __ignore__)."""
    record.annotation_path = Path(f"{root}{os.sep}{json_rel}")
    flags = data.get("flags")
    if isinstance(flags, dict):
        if flags.get(IGNORE_LABEL) is True:
            ignored.add(record.rel)
            findings.append(Finding("info", "ignored_image", json_rel, "flag __ignore__ is set: image excluded"))
            return False
        record.labels = sorted(str(k) for k, v in flags.items() if v is True and k not in PSEUDO_LABELS)
    shapes_raw = data.get("shapes")
    if shapes_raw is not None and not isinstance(shapes_raw, list):
        findings.append(Finding("error", "bad_shape", json_rel, "'shapes' is not a list"))
        shapes_raw = []
    unused: list[str] = []
    for raw in shapes_raw or []:
        shape = parse_shape(raw, json_rel, findings)
        if shape is None or shape.label in PSEUDO_LABELS:
            continue
        if shape.shape_type in NON_TRAINING_SHAPES:
            unused.append(f"{shape.shape_type} '{shape.label}'")
            continue
        record.shapes.append(shape)
    if unused:
        findings.append(Finding("info", "shape_not_used", json_rel, f"not used for training: {', '.join(unused)}"))
    _check_declared_size(data, record, json_rel, findings)
    return True


def _check_declared_size(data: dict[str, Any], record: ImageRecord, json_rel: str, findings: list[Finding]) -> None:
    width, height = data.get("imageWidth"), data.get("imageHeight")
    if record.width is None or not isinstance(width, int) or not isinstance(height, int):
        return
    if (width, height) != (record.width, record.height):
        findings.append(
            Finding(
                "warning",
                "size_mismatch",
                json_rel,
                f"JSON says {width}x{height} but the image is {record.width}x{record.height}",
            )
        )


def _apply_splits(root: Path, records: list[ImageRecord], findings: list[Finding]) -> None:
    """Split from folder names (train/, val/, test/), else from train.txt + val.txt (+ test.txt) at the root."""
    for record in records:
        record.split = split_from_rel(record.rel)
    if any(record.split for record in records):
        return
    lists: dict[SplitName, Path] = {"train": root / "train.txt", "val": root / "val.txt", "test": root / "test.txt"}
    if not (lists["train"].is_file() and lists["val"].is_file() or lists["test"].is_file()):
        return
    by_rel = {record.rel: record for record in records}
    for split, path in lists.items():
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            rel = inside(line.strip())
            if rel and rel in by_rel:
                by_rel[rel].split = split

