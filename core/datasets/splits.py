"""Train/val splits: auto, stratified, random, sequential and predefined (design document, section 6).

One function, :func:`split_dataset`, decides every split: the GUI preview, the CLI and the adapters.
A dataset's ``test`` images are never put in train or val, whatever the strategy.

Reproducible everywhere: records are sorted by their relative path before anything random happens
and every random choice comes from ``random.Random`` seeded with the user's seed (string seeds are
hashed with SHA-512 by ``random``, not with Python's per-process hash), so neither PYTHONHASHSEED
nor the order a filesystem lists files changes the result.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.config import DEFAULT_SPLIT_RATIO, DEFAULT_SPLIT_SEED, SPLIT_STRATEGIES
from core.datasets.common import inside
from core.datasets.errors import DatasetError
from core.datasets.model import DatasetIndex, ImageRecord

STRATEGIES = SPLIT_STRATEGIES
BACKGROUND = "(no annotation)"  # the stratum of images without any class


@dataclass
class SplitResult:
    train: list[ImageRecord]
    val: list[ImageRecord]
    warnings: list[str] = field(default_factory=list)
    strategy: str = "stratified"  # the strategy that ran ("auto" resolved)
    test: list[ImageRecord] = field(default_factory=list)  # the dataset's test split: never trained on
    requested: str | None = None  # the strategy asked for ("auto", ...)

    def sides(self) -> tuple[tuple[str, list[ImageRecord]], ...]:
        """(split name, records) for train, val and, when the dataset has one, test."""
        named = (("train", self.train), ("val", self.val), ("test", self.test))
        return named if self.test else named[:2]

    def split_of(self) -> dict[str, str]:
        """rel → "train" | "val" | "test"."""
        return {record.rel: name for name, records in self.sides() for record in records}

    def class_counts(self, class_names: list[str]) -> dict[str, dict[str, int]]:
        """{class: {"train": images, "val": images[, "test": images]}} (an image counts once per class it carries)."""
        return self._counts(class_names, lambda record: record.class_names(), extra_classes=True)

    def object_counts(self, class_names: list[str]) -> dict[str, dict[str, int]]:
        """Like :meth:`class_counts` but objects (grouped parts count once) instead of images."""
        return self._counts(class_names, lambda record: [instance.label for instance in record.instances()],
                            extra_classes=False)

    def _counts(self, class_names: list[str], labels_of: Callable[[ImageRecord], list[str]], *,
                extra_classes: bool) -> dict[str, dict[str, int]]:
        """Per class and side, one count per label ``labels_of(record)`` gives; a label outside
        ``class_names`` gets its own row when ``extra_classes``, else it is not counted."""
        names = [name for name, _ in self.sides()]
        counts = {name: dict.fromkeys(names, 0) for name in class_names}
        for split, records in self.sides():
            for record in records:
                for label in labels_of(record):
                    if extra_classes:
                        counts.setdefault(label, dict.fromkeys(names, 0))
                    if label in counts:
                        counts[label][split] += 1
        return counts


def _n_val(count: int, ratio: float) -> int:
    # Round half up (Python's round() rounds half to even) and keep at least one on each side.
    n_val = int(count * (1 - ratio) + 0.5)
    return min(max(n_val, 1), count - 1)


def _strata(records: list[ImageRecord], stratify_by: str) -> dict[str, list[ImageRecord]]:
    """Each image's stratum: its class for classification; for detection its rarest or dominant class."""
    image_counts: Counter[str] = Counter()
    for record in records:
        image_counts.update(record.class_names())
    groups: dict[str, list[ImageRecord]] = {}
    for record in records:
        names = record.class_names()
        if not names:
            key = BACKGROUND
        elif record.labels:
            key = min(record.labels, key=lambda n: (image_counts[n], n))
        elif stratify_by == "dominant":
            shapes = Counter(shape.label for shape in record.shapes)
            key = min(shapes, key=lambda n: (-shapes[n], image_counts[n], n))
        else:
            key = min(names, key=lambda n: (image_counts[n], n))
        groups.setdefault(key, []).append(record)
    return groups


def _read_split_file(split_file: str | Path, records: list[ImageRecord]) -> tuple[set[str], list[str]]:
    """rels of the images a train.txt lists (by relative path, absolute path or file name)."""
    path = Path(split_file)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read the split file ({exc})") from exc
    by_rel = {record.rel: record.rel for record in records}
    by_abs = {str(record.path): record.rel for record in records}
    by_name: dict[str, str | None] = {}
    for record in records:
        name = record.rel.rsplit("/", 1)[-1]
        by_name[name] = None if name in by_name else record.rel  # None: ambiguous file name
    chosen: set[str] = set()
    unknown: list[str] = []
    for line in lines:
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        rel = by_abs.get(entry) or by_rel.get(inside(entry) or "") or by_name.get(entry.replace("\\", "/").rsplit("/", 1)[-1])
        if rel is None:
            unknown.append(entry)
        else:
            chosen.add(rel)
    warnings = []
    if unknown:
        warnings.append(
            f"{path}: {len(unknown)} listed image(s) not in the dataset, e.g. {', '.join(unknown[:3])}"
        )
    if not chosen:
        raise DatasetError(f"{path}: the split file lists none of the dataset's images")
    return chosen, warnings


def resolve_strategy(index: DatasetIndex, strategy: str, split_file: str | Path | None = None) -> str:
    """The strategy that will run: a split file means "predefined"; "auto" is the dataset's own split
    when it has a val split (folders, DICE's train.txt + val.txt), else "stratified"."""
    if split_file is not None:
        return "predefined"
    if strategy == "auto":
        return "predefined" if any(record.split == "val" for record in index.images) else "stratified"
    return strategy


def split_dataset(
    index: DatasetIndex,
    strategy: str = "auto",
    ratio: float = DEFAULT_SPLIT_RATIO,
    seed: int = DEFAULT_SPLIT_SEED,
    split_file: str | Path | None = None,
    *,
    stratify_by: str = "rarest",
) -> SplitResult:
    """Split the index's images into train and val; the dataset's test images are set aside.

    The one place that decides a split: the GUI preview, the CLI and every adapter call it. ``ratio``
    is the train fraction. ``split_file`` (a train.txt) or strategy "predefined" uses the dataset's
    own split, "auto" (the default) does when there is one (see :func:`resolve_strategy`). Whatever
    the strategy, images of the dataset's ``test`` split are never put in train or val (they are in
    ``SplitResult.test``). Classes with fewer than two images stay in train, with a warning naming
    them. Raises DatasetError when the val (or train) set would be empty.
    """
    if strategy not in STRATEGIES:
        raise DatasetError(f"{index.root}: unknown split strategy {strategy!r} (expected {', '.join(STRATEGIES)})")
    if stratify_by not in ("rarest", "dominant"):
        raise DatasetError(f"{index.root}: stratify_by must be 'rarest' or 'dominant', not {stratify_by!r}")
    resolved = resolve_strategy(index, strategy, split_file)
    records = sorted(index.images, key=lambda r: r.rel)
    test = [r for r in records if r.split == "test"]
    pool = [r for r in records if r.split != "test"]
    warnings: list[str] = []
    if split_file is not None:
        chosen, warnings = _read_split_file(split_file, pool)
        train = [r for r in pool if r.rel in chosen]
        val = [r for r in pool if r.rel not in chosen]
    elif resolved == "predefined":
        train, val = _predefined(index, pool, ratio, seed, stratify_by, warnings)
    else:
        train, val = _resplit(index, resolved, pool, ratio, seed, stratify_by, warnings)
    if test:
        warnings.append(f"{len(test)} test image(s) are kept out of training and validation")
    if not val:
        raise DatasetError(
            f"{index.root}: the validation set is empty ({len(train)} image(s) in train, strategy {resolved}); "
            "add images, lower the ratio or provide val images"
        )
    if not train:
        raise DatasetError(f"{index.root}: the training set is empty ({len(val)} image(s) in val, strategy {resolved})")
    return SplitResult(
        train=sorted(train, key=lambda r: r.rel),
        val=sorted(val, key=lambda r: r.rel),
        warnings=warnings,
        strategy=resolved,
        test=test,
        requested="predefined" if split_file is not None else strategy,
    )


def _predefined(
    index: DatasetIndex, pool: list[ImageRecord], ratio: float, seed: int, stratify_by: str, warnings: list[str]
) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """The dataset's own train/val; without a val split, val is drawn from train (stratified): the
    test split is never used for validation."""
    if not index.has_predefined_split:
        raise DatasetError(
            f"{index.root}: strategy 'predefined' needs train/val folders or a split file; this dataset has neither"
        )
    train = [r for r in pool if r.split in (None, "train")]
    val = [r for r in pool if r.split == "val"]
    unassigned = sum(1 for r in pool if r.split is None)
    if unassigned:
        warnings.append(f"{unassigned} image(s) outside the train/val folders were put in train")
    if val or not train:
        return train, val
    warnings.append("the dataset has no val split: validation images were drawn from train (stratified)")
    return _resplit(index, "stratified", train, ratio, seed, stratify_by, warnings)


def _resplit(
    index: DatasetIndex,
    strategy: str,
    records: list[ImageRecord],
    ratio: float,
    seed: int,
    stratify_by: str,
    warnings: list[str],
) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """stratified, random or sequential over ``records`` (sorted by rel)."""
    if not 0 < ratio < 1:
        raise DatasetError(f"{index.root}: split ratio must be between 0 and 1 (exclusive), not {ratio}")
    if strategy == "stratified":
        return _stratified(index, records, ratio, seed, stratify_by, warnings)
    ordered = list(records)
    if strategy == "random":
        random.Random(f"{seed}:random").shuffle(ordered)
    n_val = _n_val(len(ordered), ratio) if len(ordered) >= 2 else 0
    if strategy == "random":
        return ordered[n_val:], ordered[:n_val]
    return ordered[: len(ordered) - n_val], ordered[len(ordered) - n_val :]


def _stratified(
    index: DatasetIndex,
    records: list[ImageRecord],
    ratio: float,
    seed: int,
    stratify_by: str,
    warnings: list[str],
) -> tuple[list[ImageRecord], list[ImageRecord]]:
    train: list[ImageRecord] = []
    val: list[ImageRecord] = []
    too_small: list[str] = []
    for key, members in sorted(_strata(records, stratify_by).items()):
        if len(members) < 2:
            too_small.append(f"'{key}' ({len(members)} image)")
            train.extend(members)
            continue
        shuffled = list(members)
        # One generator per stratum: adding a class never reshuffles the others.
        random.Random(f"{seed}:{key}").shuffle(shuffled)
        n_val = _n_val(len(shuffled), ratio)
        val.extend(shuffled[:n_val])
        train.extend(shuffled[n_val:])
    if too_small:
        warnings.append(
            f"too few images to split, kept in train only (no validation for them): {', '.join(too_small)}"
        )
    present = set(Counter(name for r in records for name in r.class_names()))
    empty = [name for name in index.class_names if name not in present]
    if empty:
        warnings.append(f"classes without any image: {', '.join(empty)}")
    return train, val
