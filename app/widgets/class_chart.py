"""Class-distribution bar chart (pyqtgraph): one bar per split and class.

What a bar counts is the caller's ``unit``: "images" (an image counts once per class it carries) or
"objects" (instances: a labelme group drawn in several parts is one object, as
``core.datasets.SplitResult.object_counts`` counts them), shown on the axis and in the tooltip.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QPointF
from PySide6.QtGui import QCursor
from PySide6.QtWidgets import QToolTip, QWidget

TRAIN_COLOUR = "#2f6fd0"
VAL_COLOUR = "#e0a020"
TEST_COLOUR = "#8a8f98"  # the dataset's test split: shown, never trained on


class ClassChart(pg.PlotWidget):
    """Images per class, one bar per split (train, val and the dataset's test split when it has one)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background=None)
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.unit = "images"
        self.getPlotItem().setLabel("left", self.unit)
        self.getPlotItem().showGrid(y=True, alpha=0.2)
        self._legend = self.getPlotItem().addLegend(offset=(-10, 10))
        self.bars: dict[str, pg.BarGraphItem] = {}
        self.counts: dict[str, dict[str, int]] = {}
        self.splits: tuple[str, ...] = ("train", "val")
        self.hover_text = ""  # what the tooltip shows for the class under the mouse
        self.scene().sigMouseMoved.connect(self._on_hover)

    def _on_hover(self, scene_pos: QPointF) -> None:
        """The exact counts of the class under the mouse (bars alone only give a rough height)."""
        names = list(self.counts)
        view = self.getPlotItem().vb
        if not names or not view.sceneBoundingRect().contains(scene_pos):
            self.hover_text = ""
            QToolTip.hideText()
            return
        position = int(round(view.mapSceneToView(scene_pos).x()))
        if not 0 <= position < len(names):
            self.hover_text = ""
            QToolTip.hideText()
            return
        name = names[position]
        values = self.counts[name]
        total = values.get("train", 0) + values.get("val", 0)  # the validation share of what is trained
        parts = [f"{split} {values.get(split, 0):,}" for split in self.splits]
        share = f" ({values.get('val', 0) / total:.0%} validation)" if "val" in self.splits and total else ""
        self.hover_text = f"{name}: {' · '.join(parts)} {self.unit}{share}"
        QToolTip.showText(QCursor.pos(), self.hover_text, self)

    def set_counts(self, counts: dict[str, dict[str, int]], splits: tuple[str, ...] = ("train", "val"),
                   unit: str = "images") -> None:
        """{class: {split: count}}; ``unit``: what a count is ("images" or "objects")."""
        plot = self.getPlotItem()
        self.unit = unit
        plot.setLabel("left", unit)
        for item in self.bars.values():
            plot.removeItem(item)
        self._legend.clear()
        self.bars = {}
        self.counts, self.splits = counts, splits
        names = list(counts)
        width = 0.8 / max(1, len(splits))
        colours = {"train": TRAIN_COLOUR, "val": VAL_COLOUR, "test": TEST_COLOUR, "all": TRAIN_COLOUR}
        for offset, split in enumerate(splits):
            xs = [i - 0.4 + width * (offset + 0.5) for i in range(len(names))]
            heights = [counts[name].get(split, 0) for name in names]
            bar = pg.BarGraphItem(x=xs, height=heights, width=width * 0.9, brush=colours.get(split, TRAIN_COLOUR),
                                  pen=pg.mkPen(None))
            plot.addItem(bar)
            self.bars[split] = bar
            if len(splits) > 1:  # ui-guide: a legend only when there is more than one series
                self._legend.addItem(bar, split)
        axis = plot.getAxis("bottom")
        labels = [(i, name if len(name) <= 12 else name[:11] + "…") for i, name in enumerate(names)]
        axis.setTicks([labels])
        plot.setXRange(-0.6, max(0, len(names) - 1) + 0.6, padding=0)
        top = max([counts[n].get(s, 0) for n in names for s in splits] or [1])
        plot.setYRange(0, top * 1.15 + 1, padding=0)
