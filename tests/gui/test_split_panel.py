"""The split panel's summary: the whole sentence is readable in its narrow column, from the moment
it is shown (a screenshot taken right after the split arrived used to show one clipped line)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt

from tests.gui.conftest import wait_dataset
from tests.helpers.datasets_gen import make_dice_detection


def _room(label: Any) -> tuple[int, int]:
    """(height the label has, height its wrapped text needs)."""
    needed = label.fontMetrics().boundingRect(label.contentsRect(), int(Qt.TextFlag.TextWordWrap), label.text())
    return label.contentsRect().height(), needed.height()


def test_split_summary_is_laid_out_in_full_when_it_arrives(window: Any, qtbot: Any, tmp_path: Path,
                                                           shots_dir: Path) -> None:
    dataset = make_dice_detection(tmp_path / "shapes-dataset", 60, size=64)
    window.datasets_page.add_dataset_path(str(dataset))
    wait_dataset(qtbot, window)
    page = window.datasets_page
    panel = page.split_panel
    seen: list[tuple[int, int]] = []
    # Measured in the very call that sets the text (split_result is emitted right after it).
    panel.split_result.connect(lambda _split: seen.append(_room(panel.summary)))
    page.tabs.setCurrentWidget(panel)
    qtbot.waitUntil(lambda: not panel.busy() and panel.chart is not None and bool(seen), timeout=30_000)
    assert panel.summary.text() == "48 training images, 12 validation images — auto: stratified"
    has, needs = seen[-1]
    assert needs > panel.summary.fontMetrics().height(), "the sentence wraps in this column"
    assert has >= needs, f"the summary is clipped: {has} px for {needs} px of text"
    window.grab().save(str(shots_dir / "split_and_classes.png"))
