"""Issue 13: what the Ultralytics adapter trains on is split_dataset's split (test images never in
train or val), and one unreadable image is skipped by name instead of refusing the dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.helpers.datasets_gen import make_dice_detection
from tests.unit.datasets.test_auto_split_and_groups import yolo_three_splits
from tests.unit.test_ultralytics_adapter import _adapter


def _stems(folder: Path) -> set[str]:
    return {p.stem for p in folder.iterdir()} if folder.is_dir() else set()


def test_run_dir_data_holds_exactly_the_train_and_val_images(vp_home: Path, tmp_path: Path) -> None:
    source = yolo_three_splits(tmp_path / "yolo")
    adapter = _adapter(vp_home, source, "detect")  # the default split: auto
    adapter.prepare_data()
    data_dir = Path(adapter.data_path).parent
    assert data_dir.is_relative_to(adapter.run_dir)
    data = yaml.safe_load(Path(adapter.data_path).read_text(encoding="utf-8"))
    assert _stems(data_dir / data["train"]) == _stems(source / "images" / "train")
    assert _stems(data_dir / data["val"]) == _stems(source / "images" / "val")
    assert not _stems(source / "images" / "test") & (_stems(data_dir / data["train"]) | _stems(data_dir / data["val"]))


def test_an_explicit_old_strategy_still_keeps_test_images_out(vp_home: Path, tmp_path: Path) -> None:
    source = yolo_three_splits(tmp_path / "yolo")
    adapter = _adapter(vp_home, source, "detect", split={"strategy": "stratified", "ratio": 0.5, "seed": 1})
    adapter.prepare_data()
    data_dir = Path(adapter.data_path).parent
    trained = _stems(data_dir / "images" / "train") | _stems(data_dir / "images" / "val")
    assert trained == _stems(source / "images" / "train") | _stems(source / "images" / "val")


def _warnings(adapter: Any) -> list[str]:
    return [str(value) for kind, value in adapter.reporter.events if kind == "warning"]


def test_a_corrupt_and_a_cut_off_jpeg_are_skipped_by_name(vp_home: Path, tmp_path: Path) -> None:
    source = make_dice_detection(tmp_path / "dice", n=12, size=64)
    images = sorted((source / "images").iterdir())
    garbage, cut = images[0], images[1]
    garbage.write_bytes(b"not a jpeg at all" * 10)
    cut.write_bytes(cut.read_bytes()[:300])
    adapter = _adapter(vp_home, source, "detect")
    adapter.prepare_data()  # not refused
    warnings = "\n".join(_warnings(adapter))
    assert garbage.name in warnings and cut.name in warnings
    data_dir = Path(adapter.data_path).parent
    written = _stems(data_dir / "images" / "train") | _stems(data_dir / "images" / "val")
    assert garbage.stem not in written and cut.stem not in written
    assert len(written) == 10


def test_a_jpeg_without_its_end_marker_is_copied_so_ultralytics_never_rewrites_the_users_file(
        vp_home: Path, tmp_path: Path) -> None:
    source = make_dice_detection(tmp_path / "dice", n=8, size=64)
    image = sorted((source / "images").iterdir())[0]
    image.write_bytes(image.read_bytes() + b"trailing")  # decodes, but Ultralytics would "restore" it in place
    adapter = _adapter(vp_home, source, "detect")
    adapter.prepare_data()
    data_dir = Path(adapter.data_path).parent
    placed = [p for p in data_dir.glob("images/*/*") if p.stem == image.stem]
    assert len(placed) == 1 and not placed[0].is_symlink()
    assert placed[0].stat().st_ino != image.stat().st_ino
