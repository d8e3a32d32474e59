"""Format detection and ``open_dataset``: a folder, a .zip or a data.yaml in, one DatasetIndex out."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from core import gc_policy
from core.config import DATASET_FORMATS
from core.datasets.coco import coco_json_files, read_coco
from core.datasets.common import METADATA_FILES, image_files, walk_files
from core.datasets.dice import is_dice_json, read_dice
from core.datasets.errors import DatasetError
from core.datasets.imagefolder import read_imagefolder
from core.datasets.model import DatasetIndex, Finding
from core.datasets.yolo import read_yolo
from core.datasets.zipsafe import safe_extract

FORMATS = tuple(fmt for fmt in DATASET_FORMATS if fmt != "auto")  # the config's Literal, less "auto"
READERS: dict[str, Callable[[Path, list[str] | None], DatasetIndex]] = {
    "dice": read_dice,
    "yolo": read_yolo,
    "imagefolder": read_imagefolder,
    "coco": read_coco,
}
assert set(READERS) == set(FORMATS), "every dataset format of the config has a reader"
_DICE_PEEK = 3  # how many JSON files to open to tell DICE from other JSON


def _signals(root: Path, files: list[str]) -> list[str]:
    """Every annotation format with evidence in the folder, most specific first."""
    found: list[str] = []
    coco = set(coco_json_files(root, files))
    if coco:
        found.append("coco")
    peeked = 0
    for rel in files:
        if not rel.endswith(".json") or rel in coco or rel in METADATA_FILES:
            continue
        try:
            data = json.loads((root / rel).read_bytes().decode("utf-8-sig"))
        except (OSError, ValueError):
            data = None
        if is_dice_json(data):
            found.append("dice")
            break
        peeked += 1
        if peeked >= _DICE_PEEK:
            break
    has_yaml = any(rel.count("/") == 0 and rel.lower().endswith((".yaml", ".yml")) for rel in files)
    has_labels = any(rel.endswith(".txt") and "labels" in rel.split("/")[:-1] for rel in files)
    if has_labels or has_yaml:
        found.append("yolo")
    return found


def _detect(root: Path, files: list[str]) -> tuple[str, list[str]]:
    signals = _signals(root, files)
    if signals:
        return signals[0], signals
    images = image_files(files)
    if any("/" in rel for rel in images):
        return "imagefolder", ["imagefolder"]
    if images:
        raise DatasetError(
            f"{root}: unrecognised dataset format: {len(images)} images but no annotations "
            "(expected DICE/labelme JSON, YOLO labels, COCO JSON or class folders)"
        )
    raise DatasetError(f"{root}: unrecognised dataset format: no images and no annotation files found")


def _zip_cache_dir(zip_path: Path) -> Path:
    from core.paths import cache_dir

    st = zip_path.stat()
    key = hashlib.sha256(f"{zip_path.resolve()}|{st.st_mtime_ns}|{st.st_size}".encode()).hexdigest()[:20]
    return cache_dir() / "datasets" / key


def _extract(zip_path: Path, extract_to: Path | None) -> Path:
    dest = extract_to if extract_to is not None else _zip_cache_dir(zip_path)
    marker = dest / ".vp_extracted"
    if extract_to is None and marker.is_file():
        return dest  # same zip (path, mtime, size) already extracted
    safe_extract(zip_path, dest)
    marker.write_text(str(zip_path), encoding="utf-8")
    return dest


def _dataset_root(extracted: Path) -> Path:
    """A zip usually wraps everything in one top folder: use it as the root."""
    entries = [p for p in extracted.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return extracted


def _resolve_root(path: Path, extract_to: Path | None) -> tuple[Path, Path | None]:
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".zip":
            return _dataset_root(_extract(path, extract_to)), path
        if suffix in (".yaml", ".yml"):
            return path.parent, path
        if suffix == ".json":
            # COCO files usually sit in annotations/ beside images/: the dataset is the folder above.
            parent = path.parent
            return (parent.parent if parent.name.lower() == "annotations" else parent), path
        raise DatasetError(f"{path}: not a dataset: expected a folder, a .zip, a data.yaml or a COCO JSON")
    return path, None


def detect_format(path: str | Path) -> str:
    """"dice" | "yolo" | "imagefolder" | "coco" for a folder or .zip; DatasetError if unrecognised."""
    root, source = _resolve_root(Path(path), None)
    if source is not None and source.suffix.lower() in (".yaml", ".yml"):
        return "yolo"
    files = walk_files(root)
    if not files:
        raise DatasetError(f"{root}: the folder is empty")
    return _detect(root, files)[0]


def open_dataset(path: str | Path, fmt: str = "auto", *, extract_to: str | Path | None = None) -> DatasetIndex:
    """Index a dataset without decoding any image.

    ``fmt`` is "auto" or one of FORMATS. A .zip is extracted safely into the cache (or ``extract_to``).
    Raises DatasetError for a missing path, an empty folder, an unrecognised format or no images.
    """
    if fmt != "auto" and fmt not in FORMATS:
        raise DatasetError(f"{path}: unknown format {fmt!r} (expected auto, {', '.join(FORMATS)})")
    root, source = _resolve_root(Path(path), Path(extract_to) if extract_to is not None else None)
    files = walk_files(root)
    if not files:
        raise DatasetError(f"{root}: the folder is empty")
    mixed: list[str] = []
    if fmt == "auto":
        if source is not None and source.suffix.lower() in (".yaml", ".yml"):
            fmt = "yolo"
        else:
            fmt, signals = _detect(root, files)
            mixed = [s for s in signals if s != fmt]
    with gc_policy.paused():  # ~10 objects per image, none cyclic: no collection meanwhile
        index = READERS[fmt](root, files)
    if source is not None and index.source is None:
        index.source = source
    if mixed:
        index.findings.insert(
            0,
            Finding(
                "warning",
                "mixed_formats",
                str(root),
                f"folder also holds {', '.join(mixed)} annotations; read as {fmt} (the others are ignored)",
            ),
        )
    if not index.images:
        raise DatasetError(f"{root}: no images found for a {fmt} dataset")
    return index
