from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from core.datasets import DatasetError, detect_format, open_dataset
from tests.helpers.datasets_gen import (
    labelme_json,
    labelme_shape,
    make_coco_detection,
    make_dice_classification,
    make_dice_detection,
    make_dice_pose,
    make_imagefolder,
    make_yolo_detection,
)
from tests.unit.datasets.conftest import codes, read_json, write_json


def image(path: Path, size: tuple[int, int] = (64, 48)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (10, 20, 30)).save(path)
    return path


@pytest.mark.parametrize("layout", ["dice", "labelme"])
def test_dice_layouts_field_by_field(tmp_path: Path, layout: str) -> None:
    root = make_dice_detection(tmp_path / "d", n=6, layout=layout)
    index = open_dataset(root)
    assert index.format == "dice" and index.task_hint == "detect"
    assert index.class_names == ["circle", "square"]
    assert len(index.images) == 6
    for record in index.images:
        json_path = record.annotation_path
        assert json_path is not None
        data = read_json(json_path)
        assert (record.width, record.height) == (data["imageWidth"], data["imageHeight"]) == (64, 64)
        assert record.format == "JPEG" and record.size_bytes == record.path.stat().st_size
        assert [s.label for s in record.shapes] == [s["label"] for s in data["shapes"]]
        for shape, raw in zip(record.shapes, data["shapes"], strict=True):
            xs = [p[0] for p in raw["points"]]
            ys = [p[1] for p in raw["points"]]
            assert shape.bbox() == (min(xs), min(ys), max(xs), max(ys))  # corners in any order
    expected: dict[str, int] = {"circle": 0, "square": 0}
    for json_path in root.rglob("*.json"):
        for label in {s["label"] for s in read_json(json_path)["shapes"]}:
            expected[label] += 1
    assert index.class_counts() == expected and sum(expected.values()) > 6
    assert index.findings == []


def test_dice_shape_types_flags_and_bad_shapes(tmp_path: Path) -> None:
    root = tmp_path / "d"
    image(root / "images" / "a.png", (100, 80))
    shapes = [
        labelme_shape("box", "rectangle", [[50, 40], [10, 5]]),
        labelme_shape("blob", "polygon", [[1, 1], [20, 1], [10, 15]]),
        labelme_shape("ball", "circle", [[50, 40], [60, 40]]),
        labelme_shape("tip", "point", [[3, 4]]),
        labelme_shape("edge", "line", [[0, 0], [5, 5]]),
        labelme_shape("path", "linestrip", [[0, 0], [5, 5], [9, 1]]),
        labelme_shape("Weird", "Rectangle", [[1, 1], [9, 9]]),
        labelme_shape("odd", "cuboid", [[1, 1], [2, 2]]),
        labelme_shape("bad", "polygon", [[1, 1], [2, 2]]),
        labelme_shape("nan", "rectangle", [["x", 1], [2, 2]]),
        labelme_shape("__ignore__", "rectangle", [[1, 1], [9, 9]]),
    ]
    write_json(root / "annotations" / "a.json", labelme_json("../images/a.png", 100, 80, shapes, {"outdoor": True, "night": False}))
    index = open_dataset(root)
    (record,) = index.images
    assert [(s.label, s.shape_type) for s in record.shapes] == [
        ("box", "rectangle"),
        ("blob", "polygon"),
        ("ball", "circle"),
        ("tip", "point"),
        ("Weird", "rectangle"),
    ]
    assert record.shapes[0].bbox() == (10, 5, 50, 40)
    assert record.shapes[2].bbox() == (40, 30, 60, 50)
    assert record.labels == ["outdoor"]
    assert index.class_names == sorted(["box", "blob", "ball", "tip", "Weird", "outdoor"])
    found = codes(index.findings)
    assert found["unknown_shape_type"] == ["annotations/a.json"]
    assert found["bad_points"] == ["annotations/a.json", "annotations/a.json"]
    assert found["shape_not_used"] == ["annotations/a.json"]  # line + linestrip reported together
    assert found["shape_type_case"] == ["annotations/a.json"]
    assert index.task_hint == "segment"


def test_dice_classification_from_flags_and_ignore(tmp_path: Path) -> None:
    root = make_dice_classification(tmp_path / "c", per_class=3, layout="labelme")
    data = read_json(root / "red_000.json")
    data["flags"]["__ignore__"] = True
    write_json(root / "red_000.json", data)
    index = open_dataset(root)
    assert index.task_hint == "classify" and index.class_names == ["blue", "green", "red"]
    assert index.class_counts() == {"blue": 3, "green": 3, "red": 2}
    assert "red_000.png" not in {r.rel for r in index.images}
    assert codes(index.findings)["ignored_image"] == ["red_000.json"]


def test_image_data_null_empty_and_embedded(tmp_path: Path, _isolated_home: Path) -> None:
    root = tmp_path / "d"
    image(root / "a.png")
    image(root / "b.png")
    buffer = io.BytesIO()
    Image.new("RGB", (20, 10)).save(buffer, format="PNG")
    for name, image_data in (("a", None), ("b", "")):
        payload = labelme_json(f"{name}.png", 64, 48, [labelme_shape("x", "rectangle", [[1, 1], [5, 5]])])
        payload["imageData"] = image_data
        write_json(root / f"{name}.json", payload)
    embedded = labelme_json("c.png", 20, 10, [labelme_shape("x", "rectangle", [[1, 1], [5, 5]])])
    embedded["imageData"] = base64.b64encode(buffer.getvalue()).decode()
    write_json(root / "c.json", embedded)
    index = open_dataset(root)
    by_rel = {r.rel: r for r in index.images}
    assert set(by_rel) == {"a.png", "b.png", "c.png"}
    assert (by_rel["c.png"].width, by_rel["c.png"].height) == (20, 10)
    assert by_rel["c.png"].path.is_relative_to(_isolated_home)  # never written into the user's folder
    assert not (root / "c.png").exists()


def test_truncated_json_and_path_traversal(tmp_path: Path) -> None:
    root = make_dice_detection(tmp_path / "d", n=3)
    (root / "annotations" / "img_0000.json").write_text('{"version": "5.0.1", "shapes": [', encoding="utf-8")
    evil = read_json(root / "annotations" / "img_0001.json")
    evil["imagePath"] = "../../etc/passwd"
    write_json(root / "annotations" / "img_0001.json", evil)
    absolute = read_json(root / "annotations" / "img_0002.json")
    absolute["imagePath"] = "/etc/passwd"
    write_json(root / "annotations" / "img_0002.json", absolute)
    index = open_dataset(root)
    found = {f.code: f for f in index.findings if f.path == "annotations/img_0000.json"}
    assert "line 1, column" in found["invalid_json"].message
    escapes = [f for f in index.findings if f.code == "image_path_escape"]
    assert sorted(f.path for f in escapes) == ["annotations/img_0001.json", "annotations/img_0002.json"]
    assert all(not r.path.as_posix().startswith("/etc") for r in index.images)
    # The images are still indexed, as images without annotations (the health check says so).
    assert all(r.shapes == [] for r in index.images)


def test_annotation_without_image_and_size_mismatch(tmp_path: Path) -> None:
    root = make_dice_detection(tmp_path / "d", n=2)
    (root / "images" / "img_0000.jpg").unlink()
    data = read_json(root / "annotations" / "img_0001.json")
    data["imageWidth"] = 999
    write_json(root / "annotations" / "img_0001.json", data)
    found = codes(open_dataset(root).findings)
    assert found["missing_image"] == ["annotations/img_0000.json"]
    assert found["size_mismatch"] == ["annotations/img_0001.json"]


@pytest.mark.parametrize("names_as", ["list", "dict"])
def test_yolo_reader_field_by_field(tmp_path: Path, names_as: str) -> None:
    root = make_yolo_detection(tmp_path / "y", n=8, names_as=names_as)
    index = open_dataset(root)
    assert index.format == "yolo" and index.task_hint == "detect"
    assert index.class_names == ["circle", "square"]
    assert {r.split for r in index.images} == {"train", "val"}
    assert sum(r.split == "val" for r in index.images) == 2
    for record in index.images:
        assert record.annotation_path is not None
        lines = record.annotation_path.read_text().split("\n")
        rows = [[float(v) for v in line.split()] for line in lines if line]
        assert len(rows) == len(record.shapes)
        for row, shape in zip(rows, record.shapes, strict=True):
            assert shape.label == index.class_names[int(row[0])]
            x1, y1, x2, y2 = shape.bbox()
            assert (x1 + x2) / 2 == pytest.approx(row[1] * 64, abs=1e-3)
            assert x2 - x1 == pytest.approx(row[3] * 64, abs=1e-3)
            assert (y1 + y2) / 2 == pytest.approx(row[2] * 64, abs=1e-3)


def test_yolo_bad_lines_and_orphans(tmp_path: Path) -> None:
    root = make_yolo_detection(tmp_path / "y", n=4)
    label = root / "labels" / "train" / "img_0000.txt"
    label.write_text("0 0.5 0.5 0.2\n7 0.5 0.5 0.2 0.2\nx 1 2 3 4\n1 0.5 0.5 0.2 0.2\n", encoding="utf-8")
    (root / "labels" / "train" / "ghost.txt").write_text("0 0.5 0.5 0.1 0.1\n", encoding="utf-8")
    index = open_dataset(root)
    record = next(r for r in index.images if r.rel == "images/train/img_0000.jpg")
    assert [s.label for s in record.shapes] == ["square"]
    messages = [f.message for f in index.findings if f.path == "labels/train/img_0000.txt"]
    assert messages[0].startswith("line 1: 4 numbers; expected 5")
    assert messages[1] == "line 2: class id 7 is out of range (the dataset has 2 classes)"
    assert messages[2].startswith("line 3: not numbers")
    assert len(messages) == 3
    assert codes(index.findings)["missing_image"] == ["labels/train/ghost.txt"]


def test_yolo_segment_and_download_key_never_run(tmp_path: Path) -> None:
    root = make_yolo_detection(tmp_path / "y", n=4, segment=True)
    config = (root / "data.yaml").read_text()
    sentinel = tmp_path / "PWNED"
    (root / "data.yaml").write_text(config + f"download: \"open('{sentinel}', 'w')\"\n")
    index = open_dataset(root / "data.yaml")
    assert index.task_hint == "segment"
    assert all(s.shape_type == "polygon" and len(s.points) >= 3 for r in index.images for s in r.shapes)
    assert "yaml_download_ignored" in codes(index.findings)
    assert not sentinel.exists()


def test_yolo_without_yaml_uses_ids(tmp_path: Path) -> None:
    root = make_yolo_detection(tmp_path / "y", n=4)
    (root / "data.yaml").unlink()
    index = open_dataset(root)
    assert index.format == "yolo" and index.class_names == ["0", "1"]


def test_imagefolder_with_and_without_split_level(tmp_path: Path) -> None:
    flat = open_dataset(make_imagefolder(tmp_path / "flat", per_class=3))
    assert flat.format == "imagefolder" and flat.task_hint == "classify"
    assert flat.class_names == ["blue", "green", "red"]
    assert flat.class_counts() == {"blue": 3, "green": 3, "red": 3}
    assert not flat.has_predefined_split
    split = open_dataset(make_imagefolder(tmp_path / "split", per_class=4, splits=("train", "val")))
    assert split.class_names == ["blue", "green", "red"]
    assert split.class_counts("train") == {"blue": 3, "green": 3, "red": 3}
    assert split.class_counts("val") == {"blue": 1, "green": 1, "red": 1}


def test_coco_reader_field_by_field(tmp_path: Path) -> None:
    root = make_coco_detection(tmp_path / "c", n=6)
    data = read_json(root / "annotations" / "instances.json")
    index = open_dataset(root)
    assert index.format == "coco" and index.class_names == ["circle", "square"]  # category id order
    from_file = open_dataset(root / "annotations" / "instances.json")
    assert from_file.root == root and len(from_file.images) == 6
    assert index.task_hint == "segment"
    by_name = {r.rel.rsplit("/", 1)[-1]: r for r in index.images}
    id_to_name = {img["id"]: img["file_name"] for img in data["images"]}
    for ann in data["annotations"]:
        record = by_name[id_to_name[ann["image_id"]]]
        x, y, w, h = ann["bbox"]
        label = {1: "circle", 2: "square"}[ann["category_id"]]
        matches = [s for s in record.shapes if s.label == label]
        assert any(
            abs(s.bbox()[0] - x) <= 1 and abs(s.bbox()[1] - y) <= 1 and abs(s.bbox()[2] - (x + w)) <= 1 for s in matches
        )


def test_coco_missing_image_id_and_category(tmp_path: Path) -> None:
    root = make_coco_detection(tmp_path / "c", n=3)
    data = read_json(root / "annotations" / "instances.json")
    data["annotations"].append({"id": 900, "image_id": 424242, "category_id": 1, "bbox": [1, 1, 2, 2]})
    data["annotations"].append({"id": 901, "image_id": 100, "category_id": 77, "bbox": [1, 1, 2, 2]})
    data["annotations"].append({"id": 902, "image_id": 100, "category_id": 1, "bbox": [1, 1, 4, 4], "segmentation": {"counts": "abc", "size": [64, 64]}, "iscrowd": 1})
    data["images"].append({"id": 5, "file_name": "gone.jpg", "width": 64, "height": 64})
    write_json(root / "annotations" / "instances.json", data)
    index = open_dataset(root)
    messages = [f.message for f in index.findings if f.path == "annotations/instances.json"]
    assert any("annotation 900 points at image id 424242" in m for m in messages)
    assert any("category_id 77" in m for m in messages)
    assert any("'gone.jpg' not found" in m for m in messages)
    assert any("RLE" in m for m in messages)


def test_pose_hint_and_keypoints(tmp_path: Path) -> None:
    index = open_dataset(make_dice_pose(tmp_path / "p", n=3))
    assert index.task_hint == "pose"
    assert index.class_names == ["person"] and index.keypoint_names == ["head", "left", "right"]


def test_detect_format_and_mixed_formats(tmp_path: Path) -> None:
    assert detect_format(make_dice_detection(tmp_path / "d", n=2)) == "dice"
    assert detect_format(make_yolo_detection(tmp_path / "y", n=2)) == "yolo"
    assert detect_format(make_coco_detection(tmp_path / "c", n=2)) == "coco"
    assert detect_format(make_imagefolder(tmp_path / "i", per_class=1)) == "imagefolder"
    mixed = make_dice_detection(tmp_path / "m", n=2)
    (mixed / "labels").mkdir()
    (mixed / "labels" / "img_0000.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    index = open_dataset(mixed)
    assert index.format == "dice"
    assert codes(index.findings)["mixed_formats"] == [str(mixed)]
    assert open_dataset(mixed, "yolo").format == "yolo"


def test_open_dataset_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="nowhere.*no such file"):
        open_dataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty.*empty"):
        open_dataset(tmp_path / "empty")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.md").write_text("hi")
    with pytest.raises(DatasetError, match="notes.*unrecognised"):
        open_dataset(tmp_path / "notes")
    image(tmp_path / "flat" / "a.png")
    with pytest.raises(DatasetError, match="flat.*no annotations"):
        open_dataset(tmp_path / "flat")
    (tmp_path / "yl" / "labels").mkdir(parents=True)
    (tmp_path / "yl" / "labels" / "a.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    with pytest.raises(DatasetError, match="yl.*no images"):
        open_dataset(tmp_path / "yl")
    with pytest.raises(DatasetError, match="unknown format"):
        open_dataset(tmp_path / "yl", "voc")


def test_index_never_decodes_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_dice_detection(tmp_path / "d", n=4)

    def no_decode(*args: object, **kwargs: object) -> None:
        raise AssertionError("indexing decoded an image")

    monkeypatch.setattr(Image.Image, "load", no_decode)
    monkeypatch.setattr(Image, "open", no_decode)
    index = open_dataset(root)
    assert all(r.width == 64 for r in index.images)


def test_labelme_windows_paths(tmp_path: Path) -> None:
    root = tmp_path / "d"
    image(root / "imgs" / "a.png")
    write_json(root / "ann" / "a.json", labelme_json("..\\imgs\\a.png", 64, 48, [labelme_shape("x", "rectangle", [[1, 1], [5, 5]])]))
    index = open_dataset(root)
    assert [r.rel for r in index.images] == ["imgs/a.png"]
    assert index.images[0].shapes[0].label == "x"
    assert json.loads((root / "ann" / "a.json").read_text())["imagePath"] == "..\\imgs\\a.png"


def test_labelme_image_path_in_another_letter_case(tmp_path: Path) -> None:
    # Written on Windows/macOS (case-insensitive file systems): "..\IMGS\A.PNG" names imgs/a.png here.
    root = tmp_path / "d"
    image(root / "imgs" / "a.png")
    write_json(root / "ann" / "a.json", labelme_json("..\\IMGS\\A.PNG", 64, 48, [labelme_shape("x", "rectangle", [[1, 1], [5, 5]])]))
    index = open_dataset(root)
    assert [r.rel for r in index.images] == ["imgs/a.png"]
    assert index.images[0].shapes[0].label == "x"


def test_labelme_image_path_ambiguous_by_case_is_not_guessed(tmp_path: Path) -> None:
    root = tmp_path / "d"
    image(root / "imgs" / "Photo.png")
    image(root / "imgs" / "photo.PNG")
    write_json(root / "ann" / "b.json", labelme_json("..\\imgs\\PHOTO.png", 64, 48, [labelme_shape("x", "rectangle", [[1, 1], [5, 5]])]))
    index = open_dataset(root)
    assert all(not record.shapes for record in index.images)  # neither image gets b.json's boxes
