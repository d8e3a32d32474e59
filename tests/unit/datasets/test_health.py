from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from core.datasets import check_health, images, open_dataset
from tests.helpers.datasets_gen import labelme_shape, make_dice_detection
from tests.unit.datasets.conftest import codes, read_json, write_json
from tests.unit.datasets.test_images import png_header_only


@pytest.fixture()
def broken(tmp_path: Path) -> Path:
    root = make_dice_detection(tmp_path / "d", n=10)
    imgs, anns = root / "images", root / "annotations"
    (imgs / "img_0000.jpg").write_bytes(b"")  # 0-byte
    data = (imgs / "img_0001.jpg").read_bytes()
    (imgs / "img_0001.jpg").write_bytes(data[: len(data) // 2])  # truncated: header fine, pixels not
    (imgs / "img_0002.jpg").write_bytes(b"garbage" * 10)
    Image.new("RGB", (64, 64)).save(imgs / "img_0003.jpg", format="PNG")  # wrong extension
    png_header_only(imgs / "bomb.png", 50000, 50000)
    shutil.copy(imgs / "img_0005.jpg", imgs / "copy_of_5.jpg")  # duplicate, no annotation
    (anns / "img_0004.json").unlink()
    (imgs / "img_0006.jpg").unlink()  # annotation without image
    ann = read_json(anns / "img_0007.json")
    ann["shapes"] = [
        labelme_shape("square", "rectangle", [[50, 50], [90, 90]]),
        labelme_shape("square", "rectangle", [[10, 10], [10, 30]]),
        labelme_shape("circle", "rectangle", [[100, 100], [120, 120]]),
        labelme_shape("circle", "hexagon", [[1, 1], [2, 2]]),
    ]
    write_json(anns / "img_0007.json", ann)
    (root / "labels").mkdir()
    (root / "labels" / "x.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    return root


def test_shallow_findings_name_each_file(broken: Path) -> None:
    index = open_dataset(broken)
    found = codes(check_health(index))
    assert sorted(found["corrupt_image"]) == ["images/img_0000.jpg", "images/img_0002.jpg"]
    assert found["image_too_large"] == ["images/bomb.png"]
    assert found["wrong_extension"] == ["images/img_0003.jpg"]
    assert set(found["no_annotation"]) >= {"images/img_0004.jpg", "images/copy_of_5.jpg", "images/bomb.png"}
    assert found["missing_image"] == ["annotations/img_0006.json"]
    assert found["box_outside_image"] == ["annotations/img_0007.json", "annotations/img_0007.json"]
    assert found["zero_area_box"] == ["annotations/img_0007.json"]
    assert found["unknown_shape_type"] == ["annotations/img_0007.json"]
    assert found["mixed_formats"] == [str(broken)]
    assert "duplicate_image" not in found and "images/img_0001.jpg" not in found["corrupt_image"]
    severities = {f.message: f.severity for f in check_health(index) if f.code == "box_outside_image"}
    assert sorted(severities.values()) == ["error", "warning"]  # entirely outside vs clipped


def test_deep_and_duplicates(broken: Path) -> None:
    found = codes(check_health(open_dataset(broken), deep=True, duplicates=True))
    assert "images/img_0001.jpg" in found["corrupt_image"]  # only decoding finds the truncation
    assert found["duplicate_image"] == ["images/img_0005.jpg"] or found["duplicate_image"] == ["images/copy_of_5.jpg"]


def test_file_size_cap_finding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index = open_dataset(make_dice_detection(tmp_path / "d", n=2))
    monkeypatch.setattr(images, "MAX_IMAGE_BYTES", 100)
    found = [f for f in check_health(index) if f.code == "image_too_large"]
    assert len(found) == 2 and "MB limit" in found[0].message


def test_clean_dataset_has_no_findings(tmp_path: Path) -> None:
    assert check_health(open_dataset(make_dice_detection(tmp_path / "d", n=6)), deep=True, duplicates=True) == []


def test_health_is_fast_enough_without_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index = open_dataset(make_dice_detection(tmp_path / "d", n=6))

    def no_decode(*args: object, **kwargs: object) -> None:
        raise AssertionError("shallow health check decoded an image")

    monkeypatch.setattr(Image, "open", no_decode)
    assert check_health(index) == []
