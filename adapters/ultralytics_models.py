"""Which YOLO models the installed Ultralytics knows, and where their weights are (never downloads).

The list comes from the package's own ``cfg/models/**.yaml`` files, found without importing
Ultralytics (``importlib.util.find_spec``), so the GUI's model picker stays fast. A file with a
``scales:`` block (``yolo11.yaml``) stands for one model per scale letter (``yolo11n`` … ``yolo11x``),
exactly as Ultralytics' ``yaml_model_load`` resolves ``yolo11n.yaml``.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
from pathlib import Path

from core import paths

# Tasks this adapter trains; other model families (obb, semantic, depth, open-vocabulary) are left out.
_SKIPPED_MARKERS = ("-obb", "-sem", "-depth", "world", "yoloe", "rtdetr")
_SCALE_RE = re.compile(r"^\s*scales\s*:", re.MULTILINE)
_VERSION_RE = re.compile(r"^(yolo(?:v)?\d+)(.*)$")
_SCALED_RE = re.compile(r"^yolov?\d+[nslmx]")  # Ultralytics' guess_model_scale pattern


def _models_root() -> Path | None:
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0]) / "cfg" / "models"
    return root if root.is_dir() else None


def task_of(name: str) -> str | None:
    """The task a model name stands for (``yolo11n-seg`` → segment), None for families we do not train."""
    stem = Path(name).name.lower().removesuffix(".yaml").removesuffix(".pt")
    if any(marker in stem for marker in _SKIPPED_MARKERS):
        return None
    if "-seg" in stem:
        return "segment"
    if "-cls" in stem:
        return "classify"
    if "-pose" in stem:
        return "pose"
    return "detect"


def _expand(yaml_file: Path) -> list[str]:
    stem = yaml_file.stem
    match = _VERSION_RE.match(stem)
    try:
        text = yaml_file.read_text(encoding="utf-8")
    except OSError:
        return []
    # A file already named with its scale (yolov10n.yaml) is one model, whatever its scales block says.
    if match is None or not _SCALE_RE.search(text) or _SCALED_RE.match(stem):
        return [stem]
    scales_block = text[_SCALE_RE.search(text).end():]  # type: ignore[union-attr]
    letters = [s for s in "nsmlx" if re.search(rf"^\s+{s}\s*:", scales_block, re.MULTILINE)]
    return [f"{match.group(1)}{letter}{match.group(2)}" for letter in letters] or [stem]


@functools.cache
def packaged_models() -> tuple[str, ...]:
    """Model names (no suffix) defined by the installed package's YAML files."""
    root = _models_root()
    if root is None:
        return ()
    names: set[str] = set()
    for yaml_file in root.rglob("*.yaml"):
        if not yaml_file.stem.startswith("yolo") or task_of(yaml_file.stem) is None:
            continue
        names.update(_expand(yaml_file))
    return tuple(sorted(names))


def ultralytics_weights_dir() -> Path:
    """``SETTINGS['weights_dir']`` as ``ultralytics_env`` pins it, computed without importing Ultralytics."""
    config_dir = Path(os.environ.get("YOLO_CONFIG_DIR") or paths.data_dir() / "ultralytics").expanduser()
    return config_dir / "Ultralytics" / "weights"


def weight_search_dirs() -> list[Path]:
    """Where a named model's ``.pt`` may already be: Ultralytics' cache, our imported weights, the cwd."""
    return [ultralytics_weights_dir(), paths.weights_dir(), Path.cwd()]


def find_weights(model: str) -> Path | None:
    """The cached ``.pt`` for ``model`` (``yolo11n`` or ``yolo11n.pt``), or None. Never downloads."""
    name = Path(model).name
    filename = name if name.endswith(".pt") else f"{name.removesuffix('.yaml')}.pt"
    for folder in weight_search_dirs():
        candidate = folder / filename
        if candidate.is_file():
            return candidate.resolve()
    return None


def cached_models() -> list[str]:
    """Stems of ``.pt`` files in the Ultralytics weights cache and our imported-weights folder."""
    found: set[str] = set()
    for folder in (ultralytics_weights_dir(), paths.weights_dir()):
        if folder.is_dir():
            found.update(p.stem for p in folder.glob("*.pt") if task_of(p.stem) is not None)
    return sorted(found)


def all_models() -> list[str]:
    return sorted(set(packaged_models()) | set(cached_models()))


def is_known(model: str) -> bool:
    stem = Path(model).name.removesuffix(".yaml").removesuffix(".pt")
    return stem in packaged_models() or find_weights(model) is not None
