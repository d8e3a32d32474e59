"""A metrics panel with one series names it on its axis (the ui guide allows a legend only for two or
more series: with one, "value" alone did not say what the curve is)."""

from __future__ import annotations

from typing import Any

from app.widgets.live_charts import GENERIC_Y_LABEL, ChartPanel


def _left_label(panel: ChartPanel) -> str:
    return str(panel.getPlotItem().getAxis("left").labelText)


def test_a_lone_series_names_the_axis_and_two_get_a_legend(qtbot: Any) -> None:
    panel = ChartPanel("Metrics per epoch", "epoch", GENERIC_Y_LABEL)
    qtbot.addWidget(panel)
    panel.curve(("epoch", "val/miou"), symbols=True)
    assert _left_label(panel) == "val/miou" and panel.legend is None
    panel.curve(("epoch", "val/accuracy"), symbols=True)
    assert _left_label(panel) == GENERIC_Y_LABEL and panel.legend is not None
    panel.clear_curves()
    assert _left_label(panel) == GENERIC_Y_LABEL


def test_a_panel_with_its_own_axis_name_keeps_it(qtbot: Any) -> None:
    panel = ChartPanel("Loss per step", "step", "loss")
    qtbot.addWidget(panel)
    panel.curve(("step", "train/loss"), symbols=False)
    assert _left_label(panel) == "loss"
