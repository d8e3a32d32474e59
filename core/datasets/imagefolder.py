"""ImageFolder reader: ``class/xxx.jpg``, optionally under ``train/``, ``val/`` (and ``test/``)."""

from __future__ import annotations

from pathlib import Path

from core.datasets.common import SPLIT_DIR_NAMES, image_files, make_record, walk_files
from core.datasets.model import DatasetIndex, Finding, ImageRecord


def has_split_level(rels: list[str]) -> bool:
    """True when every top-level folder holding images is a split name (train/val/test)."""
    tops = {rel.split("/", 1)[0] for rel in rels if "/" in rel}
    return bool(tops) and all(top.lower() in SPLIT_DIR_NAMES for top in tops)


def read_imagefolder(root: Path, files: list[str] | None = None) -> DatasetIndex:
    files = walk_files(root) if files is None else files
    rels = image_files(files)
    split_level = has_split_level(rels)
    findings: list[Finding] = []
    records: list[ImageRecord] = []
    classes: set[str] = set()
    for rel in rels:
        parts = rel.split("/")
        depth = 2 if split_level else 1
        if len(parts) <= depth:
            findings.append(
                Finding("warning", "no_class_folder", rel, "image is not inside a class folder (skipped)")
            )
            continue
        record = make_record(root, rel)
        if split_level:
            record.split = SPLIT_DIR_NAMES[parts[0].lower()]
        label = parts[depth - 1]
        record.labels = [label]
        classes.add(label)
        records.append(record)
    findings.extend(_empty_class_folders(root, classes, split_level))
    return DatasetIndex(
        root=root,
        format="imagefolder",
        class_names=sorted(classes),
        images=records,
        findings=findings,
        task_hint="classify",
    )


def _empty_class_folders(root: Path, classes: set[str], split_level: bool) -> list[Finding]:
    """A class folder without images is almost always a mistake (a failed copy, a typo): name it."""
    parents = [p for p in root.iterdir() if p.is_dir() and p.name.lower() in SPLIT_DIR_NAMES] if split_level else [root]
    findings = []
    for parent in parents:
        for folder in sorted(p for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if split_level and folder.name in classes:
                if any(folder.iterdir()):
                    continue
            elif folder.name in classes:
                continue
            rel = folder.relative_to(root).as_posix()
            findings.append(
                Finding("warning", "empty_class_folder", rel + "/", f"class folder '{folder.name}' has no images (ignored)")
            )
    return findings
