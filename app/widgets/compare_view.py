"""Compare runs: the same metric of several jobs overlaid, one curve per job, with a legend.

The jobs come from the jobs table's selection (Ctrl/Shift-click); their metrics are read from the
store in a worker thread. The list on the left toggles each job's curve; the combo picks the metric
(every metric any of the jobs reported, per epoch or per step).

Per-step curves of long runs (10 runs of a million steps) come from the store as one min/max pair
per pixel column over the whole run; zooming or panning reads the shown range again, like the job's
own charts do (``core.services.metrics.window``: finer levels, down to the raw points), one read per
job in its own task slot after the view settles.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
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

from app.look import HINT_STYLE, class_colour
from app.models.chart_data import ChartData, SeriesKey, fetch_window, load_chart_data
from app.workers import TaskSlots

PREFERRED = ("val/map50_95", "val/map50", "val/accuracy", "val/miou", "val/loss", "train/loss")
VIEW_FETCH_DELAY_MS = 120  # after the last zoom/pan change, the shown range is read again


def _read_metrics(store: Any, job_id: int, width: int, _state: Any) -> ChartData:
    return load_chart_data(store, job_id, width)


def _read_window(store: Any, job_id: int, name: str, x_from: float, x_to: float, width: int, _state: Any) -> Any:
    return fetch_window(store, job_id, [name], x_from, x_to, width)[name]


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
        self.hint.setStyleSheet(HINT_STYLE)
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
        # A zoomed read per job: (series key, window) — replaces the whole-run series while zoomed in.
        self.zoomed: dict[int, tuple[SeriesKey, Any]] = {}
        self.window_reads = 0  # for tests and the benchmark
        self._view_timer = QTimer(self)
        self._view_timer.setSingleShot(True)
        self._view_timer.setInterval(VIEW_FETCH_DELAY_MS)
        self._view_timer.timeout.connect(self._fetch_views)
        self.plot.getPlotItem().vb.sigXRangeChanged.connect(lambda *_: self._view_timer.start())
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
        store, width = self.state.store, self.plot_width()
        for job_id, _name in self.jobs:
            slot = f"metrics {job_id}"
            if not self.tasks.running(slot):
                self.tasks.start(slot, functools.partial(_read_metrics, store, job_id, width), title="Read metrics",
                                 on_result=self._on_loaded)
        self.redraw()

    def plot_width(self) -> int:
        return int(max(self.plot.getPlotItem().vb.width(), 200))

    def _on_loaded(self, data: ChartData) -> None:
        assert data.job_id is not None
        self.data[data.job_id] = data
        self.zoomed.pop(data.job_id, None)
        self._fill_metrics()
        self.redraw()

    # -- zoom and pan: the shown range read again ------------------------------------------------------
    def _fetch_views(self) -> None:
        """Each shown per-step curve: the range on screen (with a margin each side) at the plot's width;
        the whole run again once the view holds all of it."""
        key = self.current_key()
        if key is None or key[0] != "step":
            return
        vb = self.plot.getPlotItem().vb
        if vb.state["autoRange"][0]:  # x follows the data ("A" button, a new metric): whole-run series
            for job_id in [j for j in self.zoomed if j in self.curves]:
                del self.zoomed[job_id]
                self._draw_job(job_id)
            return
        (x0, x1), _y = vb.viewRange()
        span, width, store = x1 - x0, self.plot_width(), self.state.store
        for job_id in self.curves:
            data = self.data.get(job_id)
            if data is None or data.step_range is None:
                continue
            first, last = data.step_range
            if x0 <= first and last <= x1:
                if self.zoomed.pop(job_id, None) is not None:
                    self._draw_job(job_id)  # the whole-run series already held
                continue
            self.tasks.start(f"view {job_id}", functools.partial(
                _read_window, store, job_id, key[1], x0 - span, x1 + span, 3 * width), title="Read metrics",
                on_result=lambda window, job_id=job_id, key=key: self._on_window(job_id, key, window))

    def _on_window(self, job_id: int, key: SeriesKey, window: Any) -> None:
        if key != self.current_key() or job_id not in self.curves:
            return
        self.zoomed[job_id] = (key, window)
        self.window_reads += 1
        self._draw_job(job_id)

    def _draw_job(self, job_id: int) -> None:
        x, y = self.shown_series(job_id)
        if x is not None and job_id in self.curves:
            self.curves[job_id].setData(x, y)

    def shown_series(self, job_id: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The points a job's curve holds for the current metric: the zoomed read, else the whole run."""
        key = self.current_key()
        zoomed = self.zoomed.get(job_id)
        if zoomed is not None and zoomed[0] == key:
            return np.asarray(zoomed[1].x, dtype=np.float64), np.asarray(zoomed[1].y, dtype=np.float64)
        data = self.data.get(job_id)
        buffer = data.series.get(key) if data is not None and key is not None else None
        return (buffer.x, buffer.y) if buffer is not None else (None, None)

    def current_key(self) -> SeriesKey | None:
        key = self.metric_box.currentData()
        return None if key is None else (str(key[0]), str(key[1]))

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
        key = self.current_key()
        if key is None:
            return
        plot.setLabel("bottom", key[0])
        plot.setLabel("left", key[1])
        visible = {self.job_list.item(i).data(Qt.ItemDataRole.UserRole)
                   for i in range(self.job_list.count())
                   if self.job_list.item(i).checkState() == Qt.CheckState.Checked}
        for position, (job_id, name) in enumerate(self.jobs):
            x, y = self.shown_series(job_id)
            if x is None or job_id not in visible:
                continue
            colour = self.colour(position)
            item = pg.PlotDataItem(x, y, pen=pg.mkPen(colour, width=1), name=f"#{job_id} {name}")
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
