"""Screenshots of each page in its typical state (look at them!): VP_REFRESH_SCREENSHOTS=1 writes docs/screenshots/.

Each shot is also checked for being a real picture (not blank), so a broken page fails here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtGui import QImage

from tests.gui.conftest import wait_dataset
from tests.helpers.datasets_gen import make_dice_detection


def _colours(image: QImage) -> int:
    return len({image.pixel(x, y) for x in range(0, image.width(), 37) for y in range(0, image.height(), 29)})


def _save(widget: Any, name: str, qtbot: Any, folder: Path) -> Path:
    """Grab once the widget has painted something (layouts settle on the event loop), then save."""
    qtbot.waitUntil(lambda: _colours(widget.grab().toImage()) > 5, timeout=10_000)
    path = folder / f"{name}.png"
    assert widget.grab().save(str(path))
    assert _colours(QImage(str(path))) > 5, f"{name} looks blank"
    return path


def test_screenshots(window: Any, qtbot: Any, tmp_path: Path, shots_dir: Path) -> None:
    _save(window, "datasets_empty", qtbot, shots_dir)
    window.show_page("jobs")
    _save(window, "jobs_empty", qtbot, shots_dir)
    window.show_page("inference")
    _save(window, "inference_empty", qtbot, shots_dir)

    dice = make_dice_detection(tmp_path / "shapes-dataset", 60, size=160, polygons=False)
    (dice / "images" / "img_0007.jpg").write_bytes(b"truncated")  # one finding for the health table
    window.show_page("datasets")
    window.datasets_page.add_dataset_path(str(dice))
    wait_dataset(qtbot, window)
    model = window.datasets_page.browser.model
    qtbot.waitUntil(lambda: model.loader._memory.get(str(model.record(20).path)) is not None, timeout=15_000)
    _save(window, "datasets_populated", qtbot, shots_dir)

    browser = window.datasets_page.browser
    browser.open_row(1)
    qtbot.waitUntil(lambda: len(browser.viewer.shape_items()) > 0, timeout=10_000)
    _save(window, "image_viewer", qtbot, shots_dir)
    browser.show_grid()

    page = window.datasets_page
    page.tabs.setCurrentWidget(page.split_panel)
    qtbot.waitUntil(lambda: not page.split_panel.busy() and page.split_panel.chart is not None, timeout=30_000)
    _save(window, "split_and_classes", qtbot, shots_dir)
    page.tabs.setCurrentWidget(page.health_page)
    _save(window, "health_check", qtbot, shots_dir)

    window.show_page("train")
    window.train_page.form.widgets["batch_size"].setText("0")  # show how an invalid field is marked
    _save(window, "train_configurator", qtbot, shots_dir)
    window.train_page.form.widgets["batch_size"].setText("16")

    dialog = window.open_settings()
    qtbot.waitExposed(dialog)
    _save(dialog, "settings", qtbot, shots_dir)
    dialog.reject()
