"""Dataset browser: add by drop, format and counts, annotations drawn, split preview, bad inputs."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from sqlalchemy import func, select

from app.workers import TaskState
from core.db.models import Dataset
from tests.gui.conftest import drop_path, wait_dataset
from tests.helpers.datasets_gen import make_dice_detection


def _dataset_rows(store: Any) -> int:
    with store.read() as session:
        return int(session.scalar(select(func.count(Dataset.id))) or 0)


@pytest.fixture
def dice(tmp_path: Path) -> Path:
    return make_dice_detection(tmp_path / "dice", 12, size=64)


def test_drop_dice_dataset_shows_format_counts_and_annotations(window: Any, qtbot: Any, store: Any, dice: Path) -> None:
    drop_path(window, dice)
    loaded = wait_dataset(qtbot, window)
    page = window.datasets_page
    assert page.banner.text() == ""
    assert loaded is not None
    assert page.stack.currentWidget() is page.opened
    assert page.format_combo.currentData() == "dice"
    assert "(detected)" in page.format_combo.currentText()
    assert "12 images" in page.facts.text()
    assert "2 classes" in page.facts.text()
    assert page.browser.model.rowCount() == 12
    with store.read() as session:
        row = session.scalars(select(Dataset)).one()
        assert (row.format, row.num_images, json.loads(row.class_names)) == ("dice", 12, ["circle", "square"])
    assert window.sidebar.tree.topLevelItem(0).child(0).text(0) == "dice"

    # Open image 2 (its rectangles are written with reversed corners) and compare with its JSON.
    browser = page.browser
    browser.open_row(2)
    record = browser.current_record
    qtbot.waitUntil(lambda: len(browser.viewer.shape_items()) > 0, timeout=10_000)
    annotation = json.loads((dice / "annotations" / f"{Path(record.rel).stem}.json").read_text())
    drawn = sorted((item.label, item.shape_type, item.path().boundingRect().getCoords())
                   for item in browser.viewer.shape_items())
    expected = []
    for shape in annotation["shapes"]:
        (x1, y1), (x2, y2) = shape["points"]
        expected.append((shape["label"], shape["shape_type"], (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))))
    assert drawn == sorted(expected)
    assert sorted(item.text() for item in browser.viewer.label_items()) == sorted(s["label"] for s in annotation["shapes"])

    # Arrow keys move to the next image.
    qtbot.keyClick(browser.viewer, Qt.Key.Key_Right)
    assert browser.current_row == 3
    qtbot.waitUntil(lambda: browser.current_record.rel.endswith("img_0003.jpg"), timeout=5_000)


def test_thumbnails_load_and_are_cached_on_disk(window: Any, qtbot: Any, dice: Path, vp_home: Path) -> None:
    window.datasets_page.add_dataset_path(str(dice))
    wait_dataset(qtbot, window)
    model = window.datasets_page.browser.model
    first = str(model.record(0).path)
    qtbot.waitUntil(lambda: model.loader._memory.get(first) is not None, timeout=10_000)
    assert list((vp_home / "cache" / "thumbs").glob("*.jpg"))


def test_split_preview_counts_follow_strategy_and_are_saved(window: Any, qtbot: Any, store: Any, dice: Path) -> None:
    from core.datasets import split_dataset

    window.datasets_page.add_dataset_path(str(dice))
    loaded = wait_dataset(qtbot, window)
    panel = window.datasets_page.split_panel
    model = window.datasets_page.browser.model  # the grid's first thumbnails are painted, then:
    first = str(model.record(0).path)
    qtbot.waitUntil(lambda: model.loader._memory.get(first) is not None, timeout=10_000)
    assert not panel.counts  # computed when looked at, not while the grid paints its first thumbnails
    window.datasets_page.tabs.setCurrentWidget(panel)
    qtbot.waitUntil(lambda: not panel.busy() and bool(panel.counts), timeout=10_000)
    expected = split_dataset(loaded.index, "stratified", 0.8, 42).class_counts(loaded.index.class_names)
    assert panel.counts == expected

    panel.strategy.setCurrentText("random")
    panel.ratio.setValue(0.5)
    panel.seed.setValue(7)
    expected = split_dataset(loaded.index, "random", 0.5, 7).class_counts(loaded.index.class_names)
    qtbot.waitUntil(lambda: not panel.busy() and panel.counts == expected, timeout=10_000)
    table = {panel.table.item(r, 0).text(): (int(panel.table.item(r, 1).text()), int(panel.table.item(r, 2).text()))
             for r in range(panel.table.rowCount())}
    assert table == {name: (c["train"], c["val"]) for name, c in expected.items()}
    qtbot.waitUntil(lambda: _saved_split(store) == {"strategy": "random", "ratio": 0.5, "seed": 7}, timeout=5_000)

    # The class chart: objects (not images) per class and split, and hovering a class shows its exact counts.
    expected = split_dataset(loaded.index, "random", 0.5, 7).object_counts(list(loaded.index.class_names))
    qtbot.waitUntil(lambda: panel.chart is not None and panel.chart.counts == expected, timeout=20_000)
    from PySide6.QtCore import QPointF

    chart = panel.chart
    first = next(iter(expected))
    view = chart.getPlotItem().vb
    chart._on_hover(view.mapViewToScene(QPointF(0.1, 0.5)))
    train, val = expected[first]["train"], expected[first]["val"]
    assert chart.hover_text.startswith(f"{first}: train {train} · val {val}"), chart.hover_text
    chart._on_hover(view.mapViewToScene(QPointF(len(expected) + 3, 0.5)))  # right of the last class
    assert chart.hover_text == ""

    # The grid's split filter uses the preview split.
    browser = window.datasets_page.browser
    browser.split_filter.setCurrentIndex(browser.split_filter.findData("val"))
    split = split_dataset(loaded.index, "random", 0.5, 7)
    assert browser.model.rowCount() == len(split.val)


def _saved_split(store: Any) -> dict[str, Any] | None:
    with store.read() as session:
        row = session.scalars(select(Dataset)).first()
        return json.loads(row.split_config) if row is not None and row.split_config else None


def test_filters_by_class_and_name(window: Any, qtbot: Any, dice: Path) -> None:
    window.datasets_page.add_dataset_path(str(dice))
    loaded = wait_dataset(qtbot, window)
    browser = window.datasets_page.browser
    browser.class_filter.setCurrentIndex(browser.class_filter.findData("square"))
    with_square = [r for r in loaded.index.images if "square" in r.class_names()]
    assert browser.model.rowCount() == len(with_square)
    browser.class_filter.setCurrentIndex(0)
    browser.search.setText("img_0007")
    assert browser.model.rowCount() == 1
    assert "1 of 12 images" in browser.count_label.text()
    # Filtering by split computes the preview split (not computed yet: its tab was never shown).
    from core.datasets import split_dataset

    browser.search.setText("")
    browser.split_filter.setCurrentIndex(browser.split_filter.findData("train"))
    expected = len(split_dataset(loaded.index, "stratified", 0.8, 42).train)
    qtbot.waitUntil(lambda: browser.model.rowCount() == expected, timeout=10_000)


def test_health_finding_row_opens_the_image(window: Any, qtbot: Any, dice: Path) -> None:
    broken = dice / "images" / "img_0005.jpg"
    broken.write_bytes(b"not a jpeg at all")
    window.datasets_page.add_dataset_path(str(dice))
    wait_dataset(qtbot, window)
    page = window.datasets_page
    table = page.health
    rows = [r for r in range(table.rowCount()) if "img_0005" in table.item(r, 2).text()]
    assert rows, [table.item(r, 3).text() for r in range(table.rowCount())]
    table.cellDoubleClicked.emit(rows[0], 0)
    assert page.tabs.currentWidget() is page.browser
    assert page.browser.current_record.rel.endswith("img_0005.jpg")


def _not_a_dataset(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    return path


def _empty_folder(tmp_path: Path) -> Path:
    path = tmp_path / "empty"
    path.mkdir()
    return path


def _corrupt_zip(tmp_path: Path) -> Path:
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK\x03\x04 this is not really a zip archive" * 10)
    return path


@pytest.mark.parametrize("make_input", [_not_a_dataset, _empty_folder, _corrupt_zip],
                         ids=["text-file", "empty-folder", "corrupt-zip"])
def test_bad_drops_show_a_message_and_write_nothing(window: Any, qtbot: Any, store: Any, tmp_path: Path,
                                                    make_input: Any) -> None:
    path = make_input(tmp_path)
    drop_path(window, path)
    qtbot.waitUntil(lambda: window.datasets_page.banner.text() != "", timeout=10_000)
    text = window.datasets_page.banner.text()
    assert str(path.name) in text or str(path) in text
    assert "Traceback" not in text
    assert window.state.dataset is None
    assert window.datasets_page.stack.currentWidget() is window.datasets_page.empty
    assert _dataset_rows(store) == 0


def test_r2_url_without_keys_says_what_to_do(window: Any, qtbot: Any, store: Any) -> None:
    window.state.settings.offline_mode = False
    window.datasets_page.add_dataset_path("r2://bucket/datasets/x.zip")  # the keys are looked up in a worker
    qtbot.waitUntil(lambda: "Settings" in window.datasets_page.banner.text(), timeout=10_000)
    assert not window.datasets_page.is_busy() and window.datasets_page.busy.isHidden()
    assert _dataset_rows(store) == 0


def test_polygon_annotations_are_drawn_with_their_points(window: Any, qtbot: Any, tmp_path: Path) -> None:
    root = make_dice_detection(tmp_path / "poly", 4, size=96, polygons=True)
    window.datasets_page.add_dataset_path(str(root))
    wait_dataset(qtbot, window)
    browser = window.datasets_page.browser
    browser.open_row(0)
    qtbot.waitUntil(lambda: len(browser.viewer.shape_items()) > 0, timeout=10_000)
    annotation = json.loads((root / "annotations" / "img_0000.json").read_text())
    drawn = sorted((item.label, item.shape_type, [tuple(p) for p in item.points]) for item in browser.viewer.shape_items())
    expected = sorted((s["label"], "polygon", [tuple(map(float, p)) for p in s["points"]]) for s in annotation["shapes"])
    assert drawn == expected
    # Zoom keys change the view's scale; 0 fits the image again.
    scale = browser.viewer.transform().m11()
    qtbot.keyClick(browser.viewer, Qt.Key.Key_Plus)
    assert browser.viewer.transform().m11() > scale
    qtbot.keyClick(browser.viewer, Qt.Key.Key_0)
    assert abs(browser.viewer.transform().m11() - scale) < 1e-6


@pytest.mark.s3
def test_r2_dataset_downloads_with_progress_and_cancel_leaves_nothing(
        window: Any, store: Any, qtbot: Any, tmp_path: Path, seaweedfs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A zipped DICE dataset in a real S3 bucket (SeaweedFS on 127.0.0.1): the first download is
    cancelled from its progress (nothing registered, no partial file), the second opens it."""
    import os
    import zipfile

    from core.storage.client import objects_dir

    seaweedfs.start()
    seaweedfs.clear_bucket()
    source = make_dice_detection(tmp_path / "remote", 6, size=64)
    archive = tmp_path / "dice.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for file in sorted(source.rglob("*")):
            if file.is_file():
                bundle.write(file, file.relative_to(source).as_posix())
        bundle.writestr("notes/padding.bin", os.urandom(3 * 1024 * 1024))  # several 1 MiB chunks
    seaweedfs.client().put_object(Bucket=seaweedfs.bucket, Key="datasets/dice.zip", Body=archive.read_bytes())
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweedfs.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweedfs.secret_key)
    settings = window.state.settings
    settings.offline_mode = False
    settings.r2_endpoint_url = seaweedfs.endpoint_url
    settings.r2_bucket = seaweedfs.bucket
    page = window.datasets_page
    url = f"r2://{seaweedfs.bucket}/datasets/dice.zip"

    seen: list[tuple[int, int, str]] = []
    original = page.busy.progress
    pressed = threading.Event()  # the download waits at its first chunk until Cancel was pressed

    def cancelling(done: int, total: int, text: str = "") -> None:
        seen.append((done, total, text))
        original(done, total, text)
        page.cancel_add()  # the user presses Cancel once the first megabyte is in
        pressed.set()

    worker_progress = TaskState.progress

    def held_progress(state: TaskState, done: int, total: int, message: str = "") -> None:
        worker_progress(state, done, total, message)
        if message.startswith("Downloading"):
            pressed.wait(timeout=60)  # by construction: Cancel lands before the next chunk is read

    monkeypatch.setattr(TaskState, "progress", held_progress)
    monkeypatch.setattr(page.busy, "progress", cancelling)
    page.add_dataset_path(url)
    qtbot.waitUntil(lambda: "cancelled" in page.banner.text(), timeout=60_000)
    assert seen and "Downloading" in seen[0][2] and seen[0][1] >= 3 * 1024  # KiB
    assert seen[-1][0] < seen[-1][1]  # stopped before the end
    assert _dataset_rows(store) == 0 and window.state.dataset is None
    assert not any(objects_dir().iterdir()), list(objects_dir().iterdir())  # no partial, no cache entry

    seen.clear()
    monkeypatch.setattr(TaskState, "progress", worker_progress)
    monkeypatch.setattr(page.busy, "progress", lambda done, total, text="": (seen.append((done, total, text)),
                                                                            original(done, total, text)))
    qtbot.waitUntil(lambda: not page.is_busy(), timeout=10_000)
    page.add_dataset_path(url)
    wait_dataset(qtbot, window, timeout=60_000)
    assert window.state.dataset is not None, page.banner.text()
    assert len(window.state.dataset.index.images) == 6
    assert window.state.dataset.index.format == "dice"
    assert _dataset_rows(store) == 1
    assert any(done == total for done, total, text in seen if text.startswith("Downloading"))

    # Offline now: the complete cached copy opens without a transfer, and the banner says it is unchecked.
    settings.offline_mode = True
    qtbot.waitUntil(lambda: not page.is_busy(), timeout=10_000)
    seen.clear()
    page.add_dataset_path(url)
    qtbot.waitUntil(lambda: "Offline mode is on" in page.banner.text(), timeout=60_000)
    assert url in page.banner.text() and "out of date" in page.banner.text()
    assert not [text for _done, _total, text in seen if text.startswith("Downloading")]
    assert len(window.state.dataset.index.images) == 6 and _dataset_rows(store) == 1
