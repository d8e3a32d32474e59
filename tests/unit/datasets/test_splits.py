from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from core.datasets import DatasetError, ImageRecord, open_dataset, split_dataset
from core.datasets.model import DatasetIndex, Shape
from tests.helpers.datasets_gen import make_dice_detection, make_imagefolder


def classification_index(counts: dict[str, int]) -> DatasetIndex:
    images = [
        ImageRecord(path=Path(f"/data/{name}/{i}.jpg"), rel=f"{name}/{i:03d}.jpg", width=8, height=8, labels=[name])
        for name, count in counts.items()
        for i in range(count)
    ]
    return DatasetIndex(root=Path("/data"), format="imagefolder", class_names=sorted(counts), images=images)


def rels(records: list[ImageRecord]) -> list[str]:
    return [r.rel for r in records]


def test_stratified_keeps_ratio_per_class() -> None:
    index = classification_index({"dog": 80, "cat": 20, "bird": 7})
    result = split_dataset(index, "stratified", ratio=0.8, seed=42)
    val = Counter(r.labels[0] for r in result.val)
    train = Counter(r.labels[0] for r in result.train)
    assert val == {"dog": 16, "cat": 4, "bird": 1}  # the design document's example: dog 64/16, cat 16/4
    assert train == {"dog": 64, "cat": 16, "bird": 6}
    assert not set(rels(result.train)) & set(rels(result.val))
    assert result.strategy == "stratified" and result.warnings == []


def test_same_seed_same_split_different_seed_different_split() -> None:
    index = classification_index({"a": 30, "b": 30})
    first = split_dataset(index, seed=7)
    reversed_index = DatasetIndex(index.root, index.format, index.class_names, list(reversed(index.images)))
    assert rels(split_dataset(reversed_index, seed=7).val) == rels(first.val)  # listing order is irrelevant
    assert rels(split_dataset(index, seed=8).val) != rels(first.val)
    assert rels(split_dataset(index, "random", seed=7).val) == rels(split_dataset(index, "random", seed=7).val)


def test_split_independent_of_hash_seed(tmp_path: Path) -> None:
    make_imagefolder(tmp_path / "d", per_class=6, size=8)
    code = (
        "from core.datasets import open_dataset, split_dataset;"
        f"i = open_dataset({str(tmp_path / 'd')!r});"
        "print(','.join(r.rel for r in split_dataset(i, seed=3).val));"
        "print(','.join(r.rel for r in split_dataset(i, 'random', seed=3).val))"
    )
    outputs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}  # PYTHONPATH: the repo and the network guard
        outputs.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout)
    assert len(outputs) == 1


def test_random_and_sequential_ratios() -> None:
    index = classification_index({"a": 50, "b": 50})
    result = split_dataset(index, "random", ratio=0.7, seed=1)
    assert (len(result.train), len(result.val)) == (70, 30)
    sequential = split_dataset(index, "sequential", ratio=0.9)
    assert rels(sequential.val) == sorted(rels(index.images))[90:]


def test_one_image_class_kept_in_train_with_warning() -> None:
    index = classification_index({"a": 10, "b": 1})
    index.class_names.append("c")  # a declared class without images
    result = split_dataset(index, "stratified", ratio=0.8)
    assert [r.rel for r in result.train if r.labels == ["b"]] == ["b/000.jpg"]
    assert len(result.warnings) == 2
    assert "'b' (1 image)" in result.warnings[0] and "kept in train" in result.warnings[0]
    assert "classes without any image: c" in result.warnings[1]


def test_empty_val_is_an_error() -> None:
    with pytest.raises(DatasetError, match="validation set is empty"):
        split_dataset(classification_index({"a": 1, "b": 1}), "stratified")
    with pytest.raises(DatasetError, match="validation set is empty"):
        split_dataset(classification_index({"a": 1}), "random")
    with pytest.raises(DatasetError, match="ratio"):
        split_dataset(classification_index({"a": 5}), "random", ratio=1.0)
    with pytest.raises(DatasetError, match="unknown split strategy"):
        split_dataset(classification_index({"a": 5}), "alphabetical")


def test_detection_stratifies_by_rarest_class(tmp_path: Path) -> None:
    def image(i: int, labels: list[str]) -> ImageRecord:
        shapes = [Shape(label, "rectangle", [(0, 0), (1, 1)]) for label in labels]
        return ImageRecord(path=Path(f"/d/{i}.jpg"), rel=f"{i:03d}.jpg", width=8, height=8, shapes=shapes)

    images = [image(i, ["car", "car"]) for i in range(20)] + [image(20 + i, ["car", "bike"]) for i in range(5)]
    index = DatasetIndex(Path("/d"), "dice", ["bike", "car"], images)
    result = split_dataset(index, ratio=0.8, seed=0)
    assert Counter("bike" in r.class_names() for r in result.val) == {False: 4, True: 1}
    dominant = split_dataset(index, ratio=0.8, seed=0, stratify_by="dominant")
    assert len(dominant.val) == 5


def test_predefined_folders_and_split_file(tmp_path: Path) -> None:
    index = open_dataset(make_imagefolder(tmp_path / "d", per_class=4, size=8, splits=("train", "val")))
    result = split_dataset(index, "predefined")
    assert all(r.split == "train" for r in result.train) and all(r.split == "val" for r in result.val)
    assert len(result.val) == 3
    with pytest.raises(DatasetError, match="predefined"):
        split_dataset(open_dataset(make_dice_detection(tmp_path / "n", n=4)), "predefined")
    listing = tmp_path / "train.txt"
    dice = open_dataset(tmp_path / "n")
    listing.write_text("images/img_0000.jpg\nimg_0001.jpg\n" + str(dice.images[2].path) + "\nmissing.jpg\n")
    from_file = split_dataset(dice, split_file=listing)
    assert rels(from_file.train) == ["images/img_0000.jpg", "images/img_0001.jpg", "images/img_0002.jpg"]
    assert rels(from_file.val) == ["images/img_0003.jpg"]
    assert from_file.strategy == "predefined" and "missing.jpg" in from_file.warnings[0]
