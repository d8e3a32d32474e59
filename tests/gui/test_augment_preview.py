"""The Train page's augmentation section: preset and options, and the preview from the real helper process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.widgets.augment_preview import PREVIEW_COUNT
from tests.gui.conftest import wait_dataset
from tests.helpers.datasets_gen import make_dice_detection

HELPER_TIMEOUT_MS = 180_000  # a fresh process that imports torch and Ultralytics on a loaded machine


def _pixels(page: Any) -> list[bytes]:
    return [bytes(thumb.image.constBits()) for thumb in page.preview.thumbnails]


def _distinct_colours(picture: Any) -> int:
    image = picture.pixmap().toImage()
    return len({image.pixel(x, y) for x in range(0, image.width(), 4) for y in range(0, image.height(), 4)})


def test_preview_shows_augmented_samples_and_follows_the_preset(window: Any, qtbot: Any, tmp_path: Path,
                                                              shots_dir: Path) -> None:
    dataset = make_dice_detection(tmp_path / "dice", 16, size=96)
    window.datasets_page.add_dataset_path(str(dataset))
    wait_dataset(qtbot, window)
    window.show_page("train")
    page = window.train_page
    assert page.framework_combo.currentText() == "ultralytics"
    page.form.widgets["image_size"].setText("128")
    qtbot.waitUntil(lambda: len(page.preview.thumbnails) == PREVIEW_COUNT, timeout=HELPER_TIMEOUT_MS)
    assert "ultralytics, light preset, 128 px" in page.preview.status.text()
    for picture, caption in page.preview.cells:
        assert not picture.pixmap().isNull() and _distinct_colours(picture) > 3  # drawn images, not blank cells
        assert "object" in caption.text()
    assert page.preview.thumbnails[0].image.width() == 128
    # The preset's own values are shown in Ultralytics' names; the job carries the chosen preset.
    assert page.augmentation.fields["mosaic"].text() == "1"
    before = _pixels(page)
    page.augment_box.grab().save(str(shots_dir / "train_augmentation.png"))

    page.augmentation.preset.setCurrentIndex(page.augmentation.preset.findData("none"))
    assert page.augmentation.fields["mosaic"].text() == "0"
    qtbot.waitUntil(lambda: "none preset" in page.preview.status.text(), timeout=HELPER_TIMEOUT_MS)
    assert len(page.preview.thumbnails) == PREVIEW_COUNT
    assert _pixels(page) != before
    config = page.current_config()
    assert config.augmentation.preset == "none" and config.augmentation.options == {}

    # A field changed by hand becomes an override of the preset (and is previewed too).
    page.augmentation.fields["fliplr"].setText("1.0")
    assert page.current_config().augmentation.options == {"fliplr": 1.0}
    page.augmentation.fields["fliplr"].setText("often")
    assert "augmentation" in page.errors and not page.start_button.isEnabled()
