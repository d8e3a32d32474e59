"""Issue 13: the split "auto" decides (own split, else stratified; test never trained on) and labelme
instance groups (same label + group_id = one object) stay one object through readers and converters."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from core.config import SPLIT_DEFAULTS, config_from_dict
from core.datasets import check_health, open_dataset, split_dataset
from core.datasets.convert import merge_multi_segment, to_coco, to_dice, to_yolo
from core.services import datasets as datasets_service
from tests.helpers.datasets_gen import labelme_json, labelme_shape, make_dice_detection, make_yolo_detection
from tests.unit.datasets.conftest import read_json, write_json

SIZE = 64


def yolo_three_splits(root: Path) -> Path:
    """A YOLO dataset with train/val/test folders: 8 train, 4 val, 4 test images."""
    make_yolo_detection(root, n=16, splits=("train", "val"), val_every=4)
    val = sorted((root / "images" / "val").glob("*.jpg"))
    train = sorted((root / "images" / "train").glob("*.jpg"))
    for image in train[:4]:  # 12 train → 8 train + 4 test
        for kind, ext in (("images", ".jpg"), ("labels", ".txt")):
            source = root / kind / "train" / f"{image.stem}{ext}"
            target = root / kind / "test" / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            source.rename(target)
    assert len(val) == 4
    data = yaml.safe_load((root / "data.yaml").read_text(encoding="utf-8"))
    data["test"] = "images/test"
    (root / "data.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return root


def _stems(folder: Path) -> set[str]:
    return {p.stem for p in folder.iterdir()} if folder.is_dir() else set()


# ------------------------------------------------------------------------------------------ splits


def test_auto_is_the_default_and_uses_the_datasets_own_split_keeping_test_out(tmp_path: Path) -> None:
    assert SPLIT_DEFAULTS.strategy == "auto"
    index = open_dataset(yolo_three_splits(tmp_path / "yolo"))
    split = split_dataset(index)
    assert (split.requested, split.strategy) == ("auto", "predefined")
    assert {r.split for r in split.train} == {"train"} and len(split.train) == 8
    assert {r.split for r in split.val} == {"val"} and len(split.val) == 4
    assert {r.split for r in split.test} == {"test"} and len(split.test) == 4
    assert set(split.split_of().values()) == {"train", "val", "test"}


@pytest.mark.parametrize("strategy", ["stratified", "random", "sequential", "predefined"])
def test_no_strategy_puts_test_images_in_train_or_val(tmp_path: Path, strategy: str) -> None:
    """Old configs name a strategy explicitly: they keep working, and the test split stays out."""
    index = open_dataset(yolo_three_splits(tmp_path / "yolo"))
    split = split_dataset(index, strategy, 0.75, 3)
    assert split.strategy == strategy
    trained = {r.rel for r in split.train + split.val}
    assert not any(rel.startswith("images/test/") for rel in trained)
    assert len(trained) == 12 and len(split.test) == 4


def test_train_and_test_without_val_draws_val_from_train_never_from_test(tmp_path: Path) -> None:
    root = yolo_three_splits(tmp_path / "yolo")
    for kind in ("images", "labels"):
        for path in (root / kind / "val").iterdir():
            path.rename(root / kind / "train" / path.name)
    index = open_dataset(root)
    for strategy in ("auto", "predefined"):
        split = split_dataset(index, strategy)
        assert not {r.split for r in split.train + split.val} & {"test"}
        assert len(split.train) + len(split.val) == 12 and split.val
    assert split_dataset(index).strategy == "stratified"  # auto: no val split of its own


def test_auto_without_a_split_of_its_own_is_the_stratified_split(tmp_path: Path) -> None:
    index = open_dataset(make_dice_detection(tmp_path / "dice", 12, size=SIZE))
    auto, stratified = split_dataset(index), split_dataset(index, "stratified")
    assert auto.strategy == "stratified"
    assert [r.rel for r in auto.val] == [r.rel for r in stratified.val]


def test_old_job_configs_with_an_explicit_strategy_still_validate() -> None:
    for strategy in ("stratified", "random", "sequential", "predefined", "auto"):
        config = config_from_dict({"dataset": "x", "split": {"strategy": strategy}})
        assert config.split.strategy == strategy


def test_preview_service_and_adapters_see_the_same_split(tmp_path: Path) -> None:
    """The GUI preview (services) shows what split_dataset gives the adapters, test column included."""
    index = open_dataset(yolo_three_splits(tmp_path / "yolo"))
    preview = datasets_service.preview_split(index, datasets_service.split_choice())
    split = split_dataset(index)
    assert preview.choice["strategy"] == "auto"
    assert preview.split_of == split.split_of()
    assert sum(c["test"] for c in preview.counts.values()) >= 1
    assert preview.counts == split.class_counts(index.class_names)


def test_yolo_conversion_writes_exactly_train_and_val_and_test_apart(tmp_path: Path) -> None:
    source = yolo_three_splits(tmp_path / "yolo")
    index = open_dataset(source)
    out = to_yolo(index, tmp_path / "out", split=split_dataset(index))
    assert _stems(out / "images" / "train") == _stems(source / "images" / "train")
    assert _stems(out / "images" / "val") == _stems(source / "images" / "val")
    assert _stems(out / "images" / "test") == _stems(source / "images" / "test")
    data = yaml.safe_load((out / "data.yaml").read_text(encoding="utf-8"))
    assert (data["train"], data["val"], data["test"]) == ("images/train", "images/val", "images/test")


def test_dice_keeps_the_test_split_through_test_txt(tmp_path: Path) -> None:
    index = open_dataset(yolo_three_splits(tmp_path / "yolo"))
    back = open_dataset(to_dice(index, tmp_path / "dice"))
    assert sorted(r.split or "" for r in back.images) == sorted(r.split or "" for r in index.images)
    assert [r.rel for r in split_dataset(back).test] == sorted(f"images/{Path(r.rel).name}" for r in index.images
                                                               if r.split == "test")


# ---------------------------------------------------------------------------------------- groups


def _grouped_labelme(root: Path) -> Path:
    """One image: a 'car' in two polygon parts (group 1), a 'car' in one part, a 'person' as two boxes
    (group 2), and an __ignore__ region."""
    root.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (SIZE, SIZE), (90, 90, 90)).save(root / "a.jpg")
    shapes = [
        labelme_shape("car", "polygon", [[2, 2], [20, 2], [20, 20], [2, 20]], group_id=1),
        labelme_shape("car", "polygon", [[30, 4], [40, 4], [40, 18], [30, 18]], group_id=1),
        labelme_shape("car", "polygon", [[45, 45], [60, 45], [60, 60]]),
        labelme_shape("person", "rectangle", [[5, 30], [15, 40]], group_id=2),
        labelme_shape("person", "rectangle", [[10, 50], [25, 60]], group_id=2),
        labelme_shape("__ignore__", "polygon", [[50, 2], [60, 2], [60, 12]]),
    ]
    write_json(root / "a.json", labelme_json("a.jpg", SIZE, SIZE, shapes))
    return root


def test_reader_and_counts_count_objects_not_parts(tmp_path: Path) -> None:
    index = open_dataset(_grouped_labelme(tmp_path / "lm"))
    assert index.class_names == ["car", "person"]  # __ignore__ is never a class
    record = index.images[0]
    assert len(record.shapes) == 5
    assert [(i.label, len(i.parts)) for i in record.instances()] == [("car", 2), ("car", 1), ("person", 2)]
    assert index.object_counts() == {"car": 2, "person": 1}
    assert record.instances()[2].bbox() == (5.0, 30.0, 25.0, 60.0)


def test_labelme_groups_convert_to_one_coco_annotation_with_several_polygons(tmp_path: Path) -> None:
    index = open_dataset(_grouped_labelme(tmp_path / "lm"))
    out = to_coco(index, tmp_path / "coco")
    anns = read_json(out / "annotations" / "instances.json")["annotations"]
    assert len(anns) == 3
    car = anns[0]
    assert len(car["segmentation"]) == 2
    assert car["bbox"] == [2.0, 2.0, 38.0, 18.0]  # the union of both parts
    assert car["area"] == pytest.approx(18 * 18 + 10 * 14)
    person = anns[2]
    assert person["bbox"] == [5.0, 30.0, 20.0, 30.0] and person["segmentation"] == []
    assert all(a["category_id"] in (1, 2) for a in anns)  # nothing of __ignore__

    # COCO → DICE → COCO keeps the grouping.
    again = open_dataset(out)
    assert again.object_counts() == {"car": 2, "person": 1}
    dice = open_dataset(to_dice(again, tmp_path / "dice"))
    assert [len(i.parts) for i in dice.images[0].instances() if i.label == "car"] == [2, 1]
    round_trip = read_json(to_coco(dice, tmp_path / "coco2") / "annotations" / "instances.json")["annotations"]
    assert [len(a["segmentation"]) for a in round_trip if a["category_id"] == 1] == [2, 1]


def test_labelme_groups_convert_to_one_yolo_line_per_object(tmp_path: Path) -> None:
    index = open_dataset(_grouped_labelme(tmp_path / "lm"))
    seg = to_yolo(index, tmp_path / "seg", task="segment", split=_single_side(index))
    lines = (seg / "labels" / "train" / "a.txt").read_text(encoding="utf-8").splitlines()
    assert [line.split()[0] for line in lines] == ["0", "0", "1"]
    car = [float(v) * SIZE for v in lines[0].split()[1:]]
    points = list(zip(car[::2], car[1::2], strict=True))
    assert {(round(x), round(y)) for x, y in points} >= {(2, 2), (20, 20), (30, 4), (40, 18)}  # both parts
    detect = to_yolo(index, tmp_path / "det", task="detect", split=_single_side(index))
    boxes = [line.split() for line in (detect / "labels" / "train" / "a.txt").read_text().splitlines()]
    assert len(boxes) == 3
    _, cx, cy, w, h = (float(v) for v in boxes[0])
    assert (round(cx * SIZE, 3), round(cy * SIZE, 3), round(w * SIZE, 3), round(h * SIZE, 3)) == (21.0, 11.0, 38.0, 18.0)


def _single_side(index: Any) -> Any:
    from core.datasets.splits import SplitResult

    return SplitResult(train=list(index.images), val=[], strategy="predefined")


def test_merge_multi_segment_matches_ultralytics() -> None:
    import numpy as np

    from adapters.ultralytics_env import import_ultralytics

    import_ultralytics()  # offline set-up, and Pillow's own Image.open kept (a bare import patches it)
    from ultralytics.data.converter import merge_multi_segment as ultralytics_merge

    rng = random.Random(5)
    for count in (2, 3, 4):
        parts = [[(rng.uniform(0, 100), rng.uniform(0, 100)) for _ in range(rng.randint(3, 7))] for _ in range(count)]
        ours = merge_multi_segment(parts)
        theirs = np.concatenate(ultralytics_merge([[v for p in part for v in p] for part in parts]), axis=0)
        assert np.allclose(np.array(ours), theirs)


def test_health_checks_a_grouped_object_as_one(tmp_path: Path) -> None:
    """One part outside the image is not an error while the object's other part is inside."""
    root = tmp_path / "lm"
    root.mkdir()
    Image.new("RGB", (SIZE, SIZE)).save(root / "b.jpg")
    shapes = [labelme_shape("car", "rectangle", [[2, 2], [20, 20]], group_id=4),
              labelme_shape("car", "rectangle", [[70, 2], [90, 20]], group_id=4)]
    write_json(root / "b.json", labelme_json("b.jpg", SIZE, SIZE, shapes))
    findings = [f for f in check_health(open_dataset(root)) if f.code == "box_outside_image"]
    assert [(f.severity, "2 parts" in f.message) for f in findings] == [("warning", True)]


# --------------------------------------------------------------------------------------------- CLI


def test_inspect_shows_the_auto_split_and_objects_per_class(tmp_path: Path, capsys: Any) -> None:
    from core.datasets.cli import main

    assert main(["dataset", "inspect", str(_grouped_labelme(tmp_path / "lm"))]) == 0
    out = capsys.readouterr().out
    assert "objects" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip().startswith(("car", "person"))}
    assert rows["car"][-2:] == ["1", "2"] and rows["person"][-2:] == ["1", "1"]  # images, objects (not 3 parts)
    assert "split (auto" in out

    assert main(["dataset", "inspect", str(yolo_three_splits(tmp_path / "yolo"))]) == 0
    out = capsys.readouterr().out
    assert "split (auto: the dataset's own): 8 train, 4 val, 4 test (never trained on)" in out


def test_split_preview_cli_shows_the_test_column(tmp_path: Path, capsys: Any) -> None:
    from core.datasets.cli import main

    assert main(["dataset", "split-preview", str(yolo_three_splits(tmp_path / "yolo"))]) == 0
    out = capsys.readouterr().out
    assert "split: strategy auto, ratio 0.8, seed 42 (uses predefined)" in out
    assert "8 training images, 4 validation images, 4 test images (never trained on)" in out
    header = next(line for line in out.splitlines() if line.strip().startswith("class"))
    assert header.split() == ["class", "train", "val", "test", "total"]
