"""Compare runs: the same metric of several jobs overlaid, one curve per job, with a legend.

The jobs come from the jobs table's selection (Ctrl/Shift-click); their metrics are read from the
store in a worker thread. The list on the left toggles each job's curve; the combo picks the metric
(every metric any of the jobs reported, per epoch or per step).
"""

from __future__ import annotations

import functools
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.look import class_colour
from app.models.chart_data import ChartData, SeriesKey, load_chart_data
from app.workers import TaskSlots

PREFERRED = ("val/map50_95", "val/map50", "val/accuracy", "val/miou", "val/loss", "train/loss")


def _read_metrics(store: Any, job_id: int, _state: Any) -> ChartData:
    return load_chart_data(store, job_id)


def metric_label(key: SeriesKey) -> str:
    kind, name = key
    return name if kind == "epoch" else f"{name} (per step)"


class CompareView(QWidget):
    def __init__(self, state: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.jobs: list[tuple[int, str]] = []
        self.data: dict[int, ChartData] = {}
        self.hint = QLabel("Select two or more jobs in the table (Ctrl-click or Shift-click) to compare them.")
        self.hint.setStyleSheet("color: palette(placeholder-text);")
        self.metric_box = QComboBox()
        self.metric_box.setMinimumWidth(220)
        self.metric_box.currentIndexChanged.connect(lambda _i: self.redraw())
        self.job_list = QListWidget()
        self.job_list.setMaximumWidth(260)
        self.job_list.itemChanged.connect(lambda _item: self.redraw())
        self.plot = pg.PlotWidget(background=None)
        self.plot.setMenuEnabled(False)
        self.plot.getPlotItem().showGrid(x=True, y=True, alpha=0.15)
        self.legend = self.plot.getPlotItem().addLegend(offset=(-10, 10), labelTextSize="8pt")
        self.curves: dict[int, pg.PlotDataItem] = {}
        top = QHBoxLayout()
        top.addWidget(QLabel("Metric:"))
        top.addWidget(self.metric_box)
        top.addWidget(self.hint, 1)
        body = QHBoxLayout()
        body.addWidget(self.job_list)
        body.addWidget(self.plot, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addLayout(body, 1)
        self.tasks = TaskSlots(self)  # one slot per compared job: its metrics read

    def set_jobs(self, jobs: list[tuple[int, str]]) -> None:
        """Compare these (job id, name) pairs; metrics of jobs not loaded yet are read in the background."""
        self.jobs = jobs
        self.hint.setVisible(len(jobs) < 2)
        self.job_list.blockSignals(True)
        checked = {self.job_list.item(i).data(Qt.ItemDataRole.UserRole): self.job_list.item(i).checkState()
                   for i in range(self.job_list.count())}
        self.job_list.clear()
        for position, (job_id, name) in enumerate(jobs):
            item = QListWidgetItem(f"#{job_id} {name}")
            item.setData(Qt.ItemDataRole.UserRole, job_id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(checked.get(job_id, Qt.CheckState.Checked))
            swatch = QPixmap(12, 12)
            swatch.fill(self.colour(position))
            item.setIcon(QIcon(swatch))
            self.job_list.addItem(item)
        self.job_list.blockSignals(False)
        self.reload()

    def reload(self) -> None:
        """Re-read every compared job's metrics (running jobs keep growing)."""
        store = self.state.store
        for job_id, _name in self.jobs:
            slot = f"metrics {job_id}"
            if not self.tasks.running(slot):
                self.tasks.start(slot, functools.partial(_read_metrics, store, job_id), title="Read metrics",
                                 on_result=self._on_loaded)
        self.redraw()

    def _on_loaded(self, data: ChartData) -> None:
        assert data.job_id is not None
        self.data[data.job_id] = data
        self._fill_metrics()
        self.redraw()

    @staticmethod
    def colour(position: int) -> QColor:
        return class_colour(position)

    def _fill_metrics(self) -> None:
        keys = sorted({key for job_id, _n in self.jobs if job_id in self.data for key in self.data[job_id].series},
                      key=lambda k: (k[0] != "epoch", k[1]))
        current = self.metric_box.currentData()
        if [self.metric_box.itemData(i) for i in range(self.metric_box.count())] == keys:
            return
        self.metric_box.blockSignals(True)
        self.metric_box.clear()
        for key in keys:
            self.metric_box.addItem(metric_label(key), key)
        choice = current if current in keys else next(
            (("epoch", name) for name in PREFERRED if ("epoch", name) in keys), keys[0] if keys else None)
        if choice is not None:
            self.metric_box.setCurrentIndex(keys.index(choice))
        self.metric_box.blockSignals(False)

    def select_metric(self, kind: str, name: str) -> bool:
        # Not findData: Qt compares Python tuples held in a QVariant by identity, not by value.
        wanted = (kind, name)
        index = next((i for i in range(self.metric_box.count())
                      if tuple(self.metric_box.itemData(i)) == wanted), -1)
        if index >= 0:
            self.metric_box.setCurrentIndex(index)
        return index >= 0

    def redraw(self) -> None:
        plot = self.plot.getPlotItem()
        for item in self.curves.values():
            plot.removeItem(item)
        self.curves.clear()
        self.legend.clear()
        key = self.metric_box.currentData()
        if key is None:
            return
        key = tuple(key)
        plot.setLabel("bottom", key[0])
        plot.setLabel("left", key[1])
        visible = {self.job_list.item(i).data(Qt.ItemDataRole.UserRole)
                   for i in range(self.job_list.count())
                   if self.job_list.item(i).checkState() == Qt.CheckState.Checked}
        for position, (job_id, name) in enumerate(self.jobs):
            data = self.data.get(job_id)
            buffer = data.series.get(key) if data is not None else None
            if buffer is None or job_id not in visible:
                continue
            colour = self.colour(position)
            item = pg.PlotDataItem(buffer.x, buffer.y, pen=pg.mkPen(colour, width=1), name=f"#{job_id} {name}")
            if key[0] == "epoch":
                item.setSymbol("o")
                item.setSymbolSize(5)
                item.setSymbolBrush(colour)
                item.setSymbolPen(None)
            plot.addItem(item)  # before clip-to-view, which needs the item's view box
            item.setDownsampling(auto=True, method="peak")
            item.setClipToView(True)
            self.curves[job_id] = item
        plot.enableAutoRange()
