"""Issue 13: the annotation viewer draws a labelme group (same label and group_id) as one object with
one label, and counts objects, not parts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image
from PySide6.QtCore import QPointF
from PySide6.QtGui import QImage

from app.widgets.image_viewer import ImageViewer
from core.datasets import open_dataset
from tests.helpers.datasets_gen import labelme_json, labelme_shape
from tests.unit.datasets.conftest import write_json


def test_grouped_parts_are_one_item_and_one_label(qtbot: Any, tmp_path: Path) -> None:
    Image.new("RGB", (64, 64), (80, 80, 80)).save(tmp_path / "a.png")
    shapes = [
        labelme_shape("car", "polygon", [[2, 2], [20, 2], [20, 20], [2, 20]], group_id=1),
        labelme_shape("car", "polygon", [[30, 4], [40, 4], [40, 18], [30, 18]], group_id=1),
        labelme_shape("car", "rectangle", [[45, 45], [60, 60]]),
        labelme_shape("person", "polygon", [[5, 30], [15, 30], [15, 40]], group_id=1),  # another label: another object
    ]
    write_json(tmp_path / "a.json", labelme_json("a.png", 64, 64, shapes))
    index = open_dataset(tmp_path)
    record = index.images[0]
    viewer = ImageViewer()
    qtbot.addWidget(viewer)
    viewer.resize(300, 300)
    viewer.show()
    viewer.show_image(QImage(str(record.path)), record.shapes, index.class_names)
    qtbot.waitUntil(lambda: len(viewer.shape_items()) == 3)
    assert sorted(item.text() for item in viewer.label_items()) == ["car", "car", "person"]
    car = next(item for item in viewer.shape_items() if len(item.parts) == 2)
    assert car.path().boundingRect().getCoords() == (2.0, 2.0, 40.0, 20.0)  # both parts in one outline
    assert not car.path().contains(QPointF(25.0, 10.0))  # the gap between them
    assert "2 parts" in car.toolTip()
    # Pixels: the area inside each part is tinted with the class colour, the gap is not.
    pixels = viewer.grab().toImage()
    inside = viewer.mapFromScene(11.0, 11.0)
    gap = viewer.mapFromScene(25.0, 11.0)
    background = QImage(str(record.path)).pixelColor(25, 11)
    ratio = pixels.devicePixelRatio()
    assert pixels.pixelColor(int(inside.x() * ratio), int(inside.y() * ratio)) != background
    assert pixels.pixelColor(int(gap.x() * ratio), int(gap.y() * ratio)) == background


def test_split_preview_shows_the_datasets_own_split_with_its_test_column(qtbot: Any, tmp_path: Path) -> None:
    """The GUI preview's counts are split_dataset's (the adapters' split): auto, test kept apart."""
    from app.widgets.split_panel import SplitPanel
    from core.datasets import split_dataset
    from tests.unit.datasets.test_auto_split_and_groups import yolo_three_splits

    index = open_dataset(yolo_three_splits(tmp_path / "yolo"))
    panel = SplitPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_index(index, None)
    assert panel.strategy.currentText() == "auto"
    expected = split_dataset(index).class_counts(index.class_names)
    qtbot.waitUntil(lambda: not panel.busy() and panel.counts == expected, timeout=10_000)
    headers = [panel.table.horizontalHeaderItem(c).text() for c in range(panel.table.columnCount())]
    assert headers == ["Class", "Train", "Val", "Test", "Total"]
    assert "8 training images, 4 validation images, 4 test images" in panel.summary.text()
