"""Issue 13 on the Datasets page: a dataset with its own test split — the grid's split filter offers
"Test" (and only then), each filter shows exactly the images ``split_dataset`` puts on that side (the
split panel's counts), and the class chart can count objects, a labelme group being one object."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.gui.conftest import wait_dataset
from tests.helpers.datasets_gen import make_yolo_detection


def _split_filter_data(browser: Any) -> list[str]:
    return [browser.split_filter.itemData(i) for i in range(browser.split_filter.count())]


def test_the_grid_filters_train_val_and_test_as_the_split_panel_counts_them(
        window: Any, qtbot: Any, tmp_path: Path) -> None:
    from core.datasets import split_dataset
    from tests.unit.datasets.test_auto_split_and_groups import yolo_three_splits

    window.datasets_page.add_dataset_path(str(yolo_three_splits(tmp_path / "yolo")))
    loaded = wait_dataset(qtbot, window)
    page, browser = window.datasets_page, window.datasets_page.browser
    assert _split_filter_data(browser) == ["", "train", "val", "test"]
    page.tabs.setCurrentWidget(page.split_panel)
    panel = page.split_panel
    qtbot.waitUntil(lambda: not panel.busy() and bool(panel.counts), timeout=10_000)
    split = split_dataset(loaded.index, "auto", 0.8, 42)
    shown = {side: sum(c.get(side, 0) for c in panel.counts.values()) for side in ("train", "val", "test")}
    assert shown == {side: sum(c.get(side, 0) for c in split.class_counts(loaded.index.class_names).values())
                     for side in ("train", "val", "test")}
    assert "4 test images (never trained on)" in panel.summary.text()
    headers = [panel.table.horizontalHeaderItem(i).text() for i in range(panel.table.columnCount())]
    assert headers == ["Class", "Train", "Val", "Test", "Total"]

    for side, records in split.sides():
        browser.split_filter.setCurrentIndex(browser.split_filter.findData(side))
        rows = {browser.model.record(row).rel for row in range(browser.model.rowCount())}
        assert rows == {record.rel for record in records}, side
    assert len(split.test) == 4

    # An explicit strategy re-splits the dataset's own train/val folders (never its test images):
    # the grid follows the preview, not the folder an image is in.
    panel.strategy.setCurrentText("random")
    panel.ratio.setValue(0.5)
    resplit = split_dataset(loaded.index, "random", 0.5, 42)
    qtbot.waitUntil(lambda: not panel.busy() and panel.counts == resplit.class_counts(loaded.index.class_names),
                    timeout=10_000)
    browser.split_filter.setCurrentIndex(browser.split_filter.findData("val"))
    qtbot.waitUntil(lambda: browser.model.rowCount() == len(resplit.val), timeout=10_000)
    assert {browser.model.record(r).rel for r in range(browser.model.rowCount())} == {r.rel for r in resplit.val}


def test_no_test_option_without_test_images(window: Any, qtbot: Any, tmp_path: Path) -> None:
    window.datasets_page.add_dataset_path(str(make_yolo_detection(tmp_path / "yolo", n=8)))
    wait_dataset(qtbot, window)
    assert _split_filter_data(window.datasets_page.browser) == ["", "train", "val"]


def test_the_class_chart_counts_a_labelme_group_as_one_object(qtbot: Any, tmp_path: Path) -> None:
    from app.widgets.class_chart import ClassChart
    from core.datasets import open_dataset
    from core.datasets.splits import SplitResult
    from tests.unit.datasets.test_auto_split_and_groups import _grouped_labelme

    index = open_dataset(_grouped_labelme(tmp_path / "lm"))  # one image: all of it in train
    objects = SplitResult(train=list(index.images), val=[]).object_counts(index.class_names)
    assert {name: sum(c.values()) for name, c in objects.items()} == {"car": 2, "person": 1}  # 5 parts
    chart = ClassChart()
    qtbot.addWidget(chart)
    chart.resize(400, 260)
    chart.set_counts(objects, ("train", "val"), unit="objects")
    heights = {split: list(bar.opts["height"]) for split, bar in chart.bars.items()}
    assert [heights["train"][i] + heights["val"][i] for i in range(2)] == [2, 1]
    assert chart.getPlotItem().getAxis("left").labelText == "objects"
    chart.show()
    qtbot.waitExposed(chart)
    from PySide6.QtCore import QPointF

    chart._on_hover(chart.getPlotItem().vb.mapViewToScene(QPointF(0.1, 0.5)))
    assert chart.hover_text.startswith("car: train ") and " objects" in chart.hover_text
