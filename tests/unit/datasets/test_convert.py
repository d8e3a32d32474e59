from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from core.datasets import DatasetError, check_health, open_dataset, split_dataset
from core.datasets.convert import (
    clip_polygon,
    link_or_copy,
    read_conversion_report,
    to_coco,
    to_dice,
    to_imagefolder,
    to_yolo,
)
from tests.helpers.datasets_gen import (
    labelme_shape,
    make_dice_classification,
    make_dice_detection,
    make_dice_pose,
    make_yolo_detection,
)
from tests.unit.datasets.conftest import files_under, read_json, write_json


def boxes_by_stem(index_root: Path) -> dict[str, list[tuple[str, tuple[float, ...]]]]:
    index = open_dataset(index_root)
    return {
        Path(r.rel).stem: sorted((s.label, tuple(s.bbox())) for s in r.shapes if s.shape_type != "point")
        for r in index.images
    }


def test_dice_to_yolo_detect_field_by_field(tmp_path: Path) -> None:
    src = make_dice_detection(tmp_path / "src", n=8)
    index = open_dataset(src)
    split = split_dataset(index, ratio=0.75, seed=1)
    out = to_yolo(index, tmp_path / "yolo", task="detect", split=split)
    config = yaml.safe_load((out / "data.yaml").read_text())
    assert config == {
        "path": str(out),
        "train": "images/train",
        "val": "images/val",
        "nc": 2,
        "names": {0: "circle", 1: "square"},
    }
    assert read_json(out / "classes.json")["names"] == ["circle", "square"]
    assert {p.name for p in (out / "images" / "val").iterdir()} == {Path(r.rel).name for r in split.val}
    for record in index.images:
        split_name = "val" if record in split.val else "train"
        lines = (out / "labels" / split_name / (Path(record.rel).stem + ".txt")).read_text().splitlines()
        assert len(lines) == len(record.shapes)
        for line, shape in zip(lines, record.shapes, strict=True):
            class_id, xc, yc, w, h = line.split()
            x1, y1, x2, y2 = shape.bbox()
            assert int(class_id) == index.class_names.index(shape.label)
            assert float(xc) == pytest.approx((x1 + x2) / 2 / 64, abs=1e-6)
            assert float(yc) == pytest.approx((y1 + y2) / 2 / 64, abs=1e-6)
            assert float(w) == pytest.approx((x2 - x1) / 64, abs=1e-6)
            assert float(h) == pytest.approx((y2 - y1) / 64, abs=1e-6)
    report = read_conversion_report(out)
    assert report["images"] == 8 and report["link_methods"] == {"hardlink": 8}


def test_round_trip_dice_yolo_dice_within_one_pixel(tmp_path: Path) -> None:
    src = make_dice_detection(tmp_path / "src", n=10, layout="labelme")
    yolo = to_yolo(open_dataset(src), tmp_path / "yolo")
    back = to_dice(open_dataset(yolo), tmp_path / "back")
    before, after = boxes_by_stem(src), boxes_by_stem(back)
    assert set(before) == set(after)
    for stem, shapes in before.items():
        assert [label for label, _ in after[stem]] == [label for label, _ in shapes]
        for (_, box_a), (_, box_b) in zip(shapes, after[stem], strict=True):
            assert max(abs(a - b) for a, b in zip(box_a, box_b, strict=True)) <= 1.0
    index = open_dataset(back)
    assert index.class_names == ["circle", "square"]
    assert index.has_predefined_split  # the split travels as train.txt / val.txt


def test_round_trip_dice_coco_dice(tmp_path: Path) -> None:
    src = make_dice_detection(tmp_path / "src", n=6, polygons=True)
    coco = to_coco(open_dataset(src), tmp_path / "coco")
    assert (coco / "annotations" / "instances.json").is_file()
    data = read_json(coco / "annotations" / "instances.json")
    assert [c["name"] for c in data["categories"]] == ["circle", "square"]
    assert all(len(a["segmentation"][0]) >= 6 for a in data["annotations"])
    back = to_dice(open_dataset(coco), tmp_path / "back")
    before, after = boxes_by_stem(src), boxes_by_stem(back)
    for stem, shapes in before.items():
        assert [label for label, _ in after[stem]] == [label for label, _ in shapes]
        for (_, box_a), (_, box_b) in zip(shapes, after[stem], strict=True):
            assert max(abs(a - b) for a, b in zip(box_a, box_b, strict=True)) <= 1.0


def test_segment_polygons_normalised_and_clipped(tmp_path: Path) -> None:
    root = tmp_path / "src"
    make_dice_detection(root, n=1)
    data = read_json(root / "annotations" / "img_0000.json")
    data["shapes"] = [labelme_shape("square", "polygon", [[-10, -10], [30, -10], [30, 30], [-10, 30]])]
    data["shapes"].append(labelme_shape("circle", "polygon", [[100, 100], [120, 100], [110, 120]]))  # fully outside
    write_json(root / "annotations" / "img_0000.json", data)
    make_dice_detection(tmp_path / "more", n=2)
    for p in (tmp_path / "more").rglob("*.*"):
        target = root / p.relative_to(tmp_path / "more").with_name("x" + p.name)
        if p.suffix == ".json":
            payload = read_json(p)
            payload["imagePath"] = "../images/x" + Path(payload["imagePath"]).name
            write_json(target, payload)
        else:
            target.write_bytes(p.read_bytes())
    index = open_dataset(root)
    split = split_dataset(index, strategy="sequential", ratio=0.5)
    out = to_yolo(index, tmp_path / "seg", task="segment", split=split)
    label = next(out.glob("labels/*/img_0000.txt")).read_text().splitlines()
    assert len(label) == 1
    values = [float(v) for v in label[0].split()[1:]]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert sorted(set(values)) == pytest.approx([0.0, 30 / 64])
    assert any("no area inside the image" in s for s in read_conversion_report(out)["skipped"])


def test_clip_polygon_geometry() -> None:
    triangle = [(-5.0, 5.0), (5.0, -5.0), (5.0, 5.0)]
    clipped = clip_polygon(triangle, 10, 10)
    assert all(0 <= x <= 10 and 0 <= y <= 10 for x, y in clipped)
    assert (5.0, 5.0) in clipped and len(clipped) >= 3


def test_pose_export(tmp_path: Path) -> None:
    index = open_dataset(make_dice_pose(tmp_path / "p", n=4))
    out = to_yolo(index, tmp_path / "pose", task="pose")
    config = yaml.safe_load((out / "data.yaml").read_text())
    assert config["kpt_shape"] == [3, 3] and config["names"] == {0: "person"}
    assert config["kpt_names"] == ["head", "left", "right"]
    line = next(iter(sorted(out.glob("labels/*/*.txt")))).read_text().splitlines()[0].split()
    assert len(line) == 5 + 9
    assert line[7] == line[10] == line[13] == "2"  # all three keypoints visible
    back = open_dataset(out)
    assert back.task_hint == "pose" and back.keypoint_names == ["head", "left", "right"]


def test_classify_and_imagefolder_layouts(tmp_path: Path) -> None:
    index = open_dataset(make_dice_classification(tmp_path / "c", per_class=5))
    split = split_dataset(index, ratio=0.6, seed=3)
    out = to_yolo(index, tmp_path / "cls", task="classify", split=split)
    for split_name, records in (("train", split.train), ("val", split.val)):
        for record in records:
            assert (out / split_name / record.labels[0] / Path(record.rel).name).is_file()
    assert yaml.safe_load((out / "data.yaml").read_text())["names"] == {0: "blue", 1: "green", 2: "red"}
    flat = to_imagefolder(index, tmp_path / "folder")
    assert sorted(p.relative_to(flat).parts[0] for p in flat.glob("*/*.png")) == ["blue"] * 5 + ["green"] * 5 + ["red"] * 5
    back = open_dataset(flat)
    assert back.format == "imagefolder" and back.class_counts() == index.class_counts()


def test_yolo_to_dice_keeps_declared_order_and_no_user_yaml(tmp_path: Path) -> None:
    src = make_yolo_detection(tmp_path / "y", n=4, classes=("zebra", "apple"))
    config = yaml.safe_load((src / "data.yaml").read_text())
    config["download"] = "import os; os.system('touch PWNED')"
    (src / "data.yaml").write_text(yaml.safe_dump(config))
    index = open_dataset(src)
    dice = to_dice(index, tmp_path / "dice")
    assert open_dataset(dice).class_names == ["zebra", "apple"]  # the declared order survives
    yolo = to_yolo(open_dataset(dice), tmp_path / "yolo2")
    written = yaml.safe_load((yolo / "data.yaml").read_text())
    assert "download" not in written and written["names"] == {0: "zebra", 1: "apple"}


def test_link_or_copy_methods(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "a.bin"
    src.write_bytes(b"data")
    assert link_or_copy(src, tmp_path / "h" / "a.bin") == "hardlink"
    assert os.stat(tmp_path / "h" / "a.bin").st_ino == src.stat().st_ino

    def fail(*args: object) -> None:
        raise OSError("cross-device link")

    monkeypatch.setattr(os, "link", fail)
    assert link_or_copy(src, tmp_path / "s" / "a.bin") == "symlink"
    assert (tmp_path / "s" / "a.bin").is_symlink() and (tmp_path / "s" / "a.bin").read_bytes() == b"data"
    monkeypatch.setattr(os, "symlink", fail)
    assert link_or_copy(src, tmp_path / "c" / "a.bin") == "copy"
    assert not (tmp_path / "c" / "a.bin").is_symlink() and (tmp_path / "c" / "a.bin").read_bytes() == b"data"
    assert link_or_copy(src, tmp_path / "h" / "a.bin", link=False) == "copy"


def test_output_folder_rules(tmp_path: Path) -> None:
    src = make_dice_detection(tmp_path / "src", n=4)
    index = open_dataset(src)
    with pytest.raises(DatasetError, match="must not be the dataset folder"):
        to_yolo(index, src / "yolo")
    with pytest.raises(DatasetError, match="must not be the dataset folder"):
        to_yolo(index, tmp_path)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "precious.txt").write_text("keep")
    with pytest.raises(DatasetError, match="not empty"):
        to_yolo(index, tmp_path / "busy")
    assert (tmp_path / "busy" / "precious.txt").read_text() == "keep"
    out = to_yolo(index, tmp_path / "out")
    (out / "stale.txt").write_text("old")
    to_yolo(index, tmp_path / "out")  # a previous conversion of ours is regenerated
    assert not (out / "stale.txt").exists()


def test_traversal_json_writes_nothing_outside_output(tmp_path: Path) -> None:
    src = make_dice_detection(tmp_path / "src", n=4)
    evil = read_json(src / "annotations" / "img_0000.json")
    evil["imagePath"] = "../../../../etc/passwd"
    write_json(src / "annotations" / "img_0000.json", evil)
    before = files_under(tmp_path)
    out = to_yolo(open_dataset(src), tmp_path / "out")
    after = files_under(tmp_path)
    assert {f for f in after - before if not f.startswith("out/")} == set()
    assert not any("passwd" in f for f in files_under(out))


def test_labels_outside_class_list_are_skipped_not_crashing(tmp_path: Path) -> None:
    root = tmp_path / "src"
    make_dice_detection(root, n=4)
    (root / "classes.txt").write_text("circle\nsquare\n")
    data = read_json(root / "annotations" / "img_0000.json")
    data["shapes"].append(labelme_shape("alien", "rectangle", [[1, 1], [9, 9]]))
    write_json(root / "annotations" / "img_0000.json", data)
    index = open_dataset(root)
    assert index.class_names == ["circle", "square"]
    unknown = [f for f in check_health(index) if f.code == "unknown_label"]
    assert [(f.path, f.severity) for f in unknown] == [("annotations/img_0000.json", "error")]
    assert "'alien'" in unknown[0].message
    out = to_yolo(index, tmp_path / "out")
    assert yaml.safe_load((out / "data.yaml").read_text())["names"] == {0: "circle", 1: "square"}
    assert any("label 'alien' is not a class" in s for s in read_conversion_report(out)["skipped"])
    lines = [line for p in out.glob("labels/*/*.txt") for line in p.read_text().splitlines()]
    assert all(int(line.split()[0]) in (0, 1) for line in lines)
