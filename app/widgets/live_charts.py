"""Live training charts (pyqtgraph): loss per step, loss per epoch, metrics per epoch, learning rate.

Events only append to numpy buffers (:class:`ChartData`); a ~15 Hz timer pushes the series that
changed to their curves. Curves use peak downsampling and clip-to-view, so a 100k-point series
redraws in milliseconds and 20 events/s never stall the event loop. Hovering shows the values at the
cursor; clicking a legend entry hides or shows its series.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, QTimer
from PySide6.QtWidgets import QGraphicsItem, QGridLayout, QLabel, QVBoxLayout, QWidget

from app.look import HINT_STYLE, class_colour
from app.models.chart_data import ChartData, SeriesKey
from app.workers import TaskSlots

REDRAW_INTERVAL_MS = 66  # ~15 Hz: smooth enough to watch, cheap enough to never be noticed
VIEW_FETCH_DELAY_MS = 120  # after the last zoom/pan change, the new range is read
STEP_PANELS = ("loss_step", "lr")  # panels whose x is the step: their series are read per view
WindowFetcher = Callable[[int, list[str], float, float, int], dict[str, Any]]

GENERIC_Y_LABEL = "value"  # a panel of assorted metrics: a lone series names the axis instead
# (panel id, title, x label, y label)
PANELS = (
    ("loss_step", "Loss per step", "step", "loss"),
    ("loss_epoch", "Loss per epoch", "epoch", "loss"),
    ("metrics_epoch", "Metrics per epoch", "epoch", GENERIC_Y_LABEL),
    ("lr", "Learning rate", "step", "learning rate"),
)

# Series the run reports that are bookkeeping, not curves anyone reads.
HIDDEN_NAMES = frozenset({"epoch", "step", "time", "epoch_time_s"})


def panel_for(key: SeriesKey, has_step_lr: bool) -> str | None:
    kind, name = key
    short = name.rsplit("/", 1)[-1].lower()
    if short in HIDDEN_NAMES:
        return None
    if short in ("lr", "learning_rate") or short.startswith("lr"):
        # The per-step learning rate shows warm-up and schedule; the per-epoch one only when that is all.
        return "lr" if kind == "step" or not has_step_lr else None
    if "loss" in short:
        return "loss_step" if kind == "step" else "loss_epoch"
    if kind == "epoch":
        return "metrics_epoch"
    return None  # per-step accuracy and similar: noisy, the epoch value is the one to read


def series_colour(name: str, names: list[str]) -> Any:
    """Stable colour per metric name within a panel (the class-colour palette, by sorted position)."""
    return class_colour(names.index(name) if name in names else len(names))


class IntegerAxis(pg.AxisItem):
    """Epochs and steps are whole numbers: no "epoch 0.6" ticks."""

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, list[float]]]:
        levels = super().tickValues(minVal, maxVal, size)
        out: list[tuple[float, list[float]]] = []
        for spacing, values in levels:
            if spacing < 1:
                if out:
                    continue
                spacing = 1.0
                values = list(np.arange(np.ceil(minVal), np.floor(maxVal) + 1))
            out.append((spacing, [v for v in values if float(v).is_integer()]))
        return out


class ChartPanel(pg.PlotWidget):
    def __init__(self, title: str, x_label: str, y_label: str, parent: QWidget | None = None) -> None:
        super().__init__(parent, background=None, axisItems={"bottom": IntegerAxis("bottom")})
        plot = self.getPlotItem()
        # Plain numbers on the value axis: "0.45", not "450 (x0.001)".
        plot.getAxis("left").enableAutoSIPrefix(False)
        plot.setTitle(title, size="10pt")
        plot.setLabel("bottom", x_label)
        plot.setLabel("left", y_label)
        # No grid: with one, every axis (a costly text picture) repaints whenever a curve changes.
        self.setMenuEnabled(False)
        self.legend: pg.LegendItem | None = None
        self.curves: dict[SeriesKey, pg.PlotDataItem] = {}
        self.bounds: dict[SeriesKey, list[float]] = {}
        self.x_label = x_label
        self.y_label = y_label
        # The panel manages its own range while "following" the run: it grows in steps with headroom,
        # so axes (costly to repaint) change a few times per run, not at every new point. Pan or zoom
        # stops following; the "A" button (auto range) starts it again.
        self.follow = True
        self._fitted = False
        self.on_view_change: Callable[[], None] | None = None  # zoom, pan or "A": step series are read again
        plot.vb.disableAutoRange()
        # Axes and title are text (slow to paint in software): keep them as cached pixmaps, redrawn
        # only when the range changes, not each time a curve under them does.
        for name in ("left", "bottom"):
            plot.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        plot.titleLabel.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        plot.sigRangeChangedManually.connect(self._on_manual_range)

    def _on_manual_range(self, *_args: Any) -> None:
        if not any(self.getPlotItem().vb.state["autoRange"]):
            self.follow = False
        if self.on_view_change is not None:
            self.on_view_change()

    def fit(self, *, force: bool = False) -> None:
        """Follow the data: grow the range with headroom when a point falls outside it."""
        vb = self.getPlotItem().vb
        if any(vb.state["autoRange"]):  # the user pressed "A": follow again, with our ranges
            self.follow = True
            vb.disableAutoRange()
            force = True
            if self.on_view_change is not None:
                self.on_view_change()  # a zoomed read goes back to the whole run
        if not self.follow:
            return
        visible = [b for key, b in self.bounds.items() if self.curves[key].isVisible() and b[0] <= b[1]]
        if not visible:
            return
        x0, x1 = min(b[0] for b in visible), max(b[1] for b in visible)
        y0, y1 = min(b[2] for b in visible), max(b[3] for b in visible)
        (vx0, vx1), (vy0, vy1) = vb.viewRange()
        # The first data always sets the range: the default 0..1 view "contains" an lr of 0.001 too.
        if self._fitted and not force and vx0 <= x0 and x1 <= vx1 and vy0 <= y0 and y1 <= vy1:
            return
        self._fitted = True
        x_span = max(x1 - x0, 1.0)
        y_span = (y1 - y0) or max(abs(y1) * 0.1, 1e-6)
        # Headroom: 30 % more x, 20 % more y below and 10 % above (losses fall, metrics rise).
        vb.setRange(xRange=(x0 - 0.02 * x_span, x1 + 0.3 * x_span), yRange=(y0 - 0.2 * y_span, y1 + 0.1 * y_span),
                    padding=0, disableAutoRange=True)

    def curve(self, key: SeriesKey, *, symbols: bool) -> pg.PlotDataItem:
        item = self.curves.get(key)
        if item is None:
            names = sorted(name for _kind, name in [*self.curves, key])
            colour = series_colour(key[1], names)
            # Buffers hold finite values only (ChartData drops NaN/inf), so pyqtgraph may skip its
            # finite checks and draw one polyline instead of a path with breaks.
            item = pg.PlotDataItem(pen=pg.mkPen(colour, width=1), name=key[1], connect="all", skipFiniteCheck=True)
            if symbols:  # a few epochs: dots make single points visible
                item.setSymbol("o")
                item.setSymbolSize(5)
                item.setSymbolBrush(colour)
                item.setSymbolPen(None)
            # Added first: clip-to-view asks the item's view box, which it has only once in the plot.
            self.getPlotItem().addItem(item)
            item.setDownsampling(auto=True, method="peak")
            # One min/max pair per pixel column (pyqtgraph's default keeps five): the same picture, a
            # fifth of the points to draw at 100k points per series.
            item.opts["autoDownsampleFactor"] = 1.0
            item.setClipToView(True)
            self.curves[key] = item
            self._update_legend()
        return item

    def _update_legend(self) -> None:
        # ui-guide: a legend only when there is more than one series; a lone series of a panel whose
        # axis says only "value" is named on that axis instead.
        if self.y_label == GENERIC_Y_LABEL:
            self._set_axis_name(next(iter(self.curves))[1] if len(self.curves) == 1 else GENERIC_Y_LABEL)
        if len(self.curves) > 1 and self.legend is None:
            self.legend = self.getPlotItem().addLegend(offset=(-10, 10), labelTextSize="8pt")
            for key, item in self.curves.items():
                self.legend.addItem(item, key[1])
        elif self.legend is not None:
            present = {label.text for _sample, label in self.legend.items}
            for key, item in self.curves.items():
                if key[1] not in present:
                    self.legend.addItem(item, key[1])

    def clear_curves(self) -> None:
        plot = self.getPlotItem()
        for item in self.curves.values():
            plot.removeItem(item)
        self.curves.clear()
        self.bounds.clear()
        self.follow = True
        self._fitted = False
        if self.legend is not None:
            self.legend.clear()
            plot.scene().removeItem(self.legend)
            plot.legend = None
            self.legend = None
        self._set_axis_name(self.y_label)

    def _set_axis_name(self, name: str) -> None:
        """A new axis text only when it changes: each one lays the plot out again (tens of ms)."""
        if self.getPlotItem().getAxis("left").labelText != name:
            self.getPlotItem().setLabel("left", name)

    def point_count(self) -> int:
        total = 0
        for item in self.curves.values():
            x, _y = item.getOriginalDataset()
            total += 0 if x is None else len(x)
        return total


class LiveCharts(QWidget):
    """The four panels for one job, fed by :meth:`set_data` (from SQLite) and :meth:`add_metrics` (live)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(4)
        self.panels: dict[str, ChartPanel] = {}
        for position, (panel_id, title, x_label, y_label) in enumerate(PANELS):
            panel = ChartPanel(title, x_label, y_label)
            if panel_id == "lr":  # 1e-4 style values: "learning rate (x0.001)" with short ticks reads best
                panel.getPlotItem().getAxis("left").enableAutoSIPrefix(True)
            panel.scene().sigMouseMoved.connect(lambda pos, p=panel: self._on_hover(p, pos))
            grid.addWidget(panel, position // 2, position % 2)
            self.panels[panel_id] = panel
        self.hover = QLabel(" ")
        self.hover.setStyleSheet(HINT_STYLE)
        self.hover.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(grid, 1)
        layout.addWidget(self.hover)
        self.data = ChartData()
        self._last_panel = ""
        self.redraws = 0  # for tests and the benchmark
        self.timer = QTimer(self)
        self.timer.setInterval(REDRAW_INTERVAL_MS)
        self.timer.timeout.connect(self.redraw)
        self.timer.start()
        # Zoom and pan read the step series again for the new range (the store serves one min/max
        # pair per pixel column, raw points once few enough): a wheel's burst of changes reads once.
        self.fetcher: WindowFetcher | None = None
        self.tasks = TaskSlots(self)
        self._views_changed: set[str] = set()
        self._view_timer = QTimer(self)
        self._view_timer.setSingleShot(True)
        self._view_timer.setInterval(VIEW_FETCH_DELAY_MS)
        self._view_timer.timeout.connect(self._fetch_views)
        self.window_reads = 0  # for tests and the benchmark
        for panel_id, panel in self.panels.items():
            if panel_id in STEP_PANELS:
                panel.on_view_change = lambda p=panel_id: self._on_view_change(p)

    def set_fetcher(self, fetcher: WindowFetcher | None) -> None:
        """``fetcher(job_id, names, x_from, x_to, width)`` -> {name: window} (run in a worker thread)."""
        self.fetcher = fetcher

    def plot_width(self) -> int:
        return max(self.panels["loss_step"].getPlotItem().vb.width(), 200)

    def _on_view_change(self, panel_id: str) -> None:
        self._views_changed.add(panel_id)
        self._view_timer.start()

    def _fetch_views(self) -> None:
        changed, self._views_changed = self._views_changed, set()
        for panel_id in changed:
            self._fetch_view(panel_id)

    def _fetch_view(self, panel_id: str) -> None:
        panel, job_id, fetcher = self.panels[panel_id], self.job_id, self.fetcher
        names = [name for kind, name in panel.curves if kind == "step"]
        if fetcher is None or job_id is None or not names:
            return
        width = int(max(panel.getPlotItem().vb.width(), 200))
        if panel.follow and self.data.step_range is not None:
            x_from, x_to = self.data.step_range  # the whole run again
        else:
            (x0, x1), _y = panel.getPlotItem().vb.viewRange()
            span = x1 - x0
            x_from, x_to, width = x0 - span, x1 + span, 3 * width  # a margin: a short pan needs no read
        self.tasks.start(f"view {panel_id}", lambda _st: fetcher(job_id, names, x_from, x_to, width),
                         title="Read metrics", on_result=lambda windows: self._on_windows(job_id, windows))

    def _on_windows(self, job_id: int, windows: dict[str, Any]) -> None:
        if job_id != self.job_id:
            return
        for name, window in windows.items():
            self.data.set_series(("step", name), window.x, window.y)
        self.window_reads += 1
        self.redraw(all_panels=True)

    @property
    def job_id(self) -> int | None:
        return self.data.job_id

    def set_data(self, data: ChartData) -> None:
        """Show another job (or the same one reloaded): all curves are rebuilt from ``data``."""
        for panel in self.panels.values():
            panel.clear_curves()
        self.data = data
        data.dirty = set(data.series)
        self.redraw(all_panels=True)
        for panel in self.panels.values():
            panel.fit(force=True)

    def add_metrics(self, kind: str, epoch: int | None, step: int | None, values: dict[str, Any]) -> bool:
        return self.data.add(kind, epoch, step, values)

    def redraw(self, *, all_panels: bool = False) -> None:
        """Push changed series to their curves: one panel per tick (round robin), unless ``all_panels``.

        Painting a panel is the costly part (software rasteriser); updating one per 66 ms tick keeps
        every event-loop turn short, and each panel still refreshes several times a second.
        """
        dirty = self.data.take_dirty()
        if not dirty:
            return
        has_step_lr = any(kind == "step" and name.rsplit("/", 1)[-1] == "lr" for kind, name in self.data.series)
        by_panel: dict[str, list[SeriesKey]] = {}
        for key in dirty:
            panel_id = panel_for(key, has_step_lr)
            if panel_id is not None:
                by_panel.setdefault(panel_id, []).append(key)
        if not all_panels and len(by_panel) > 1:
            order = [p for p, *_rest in PANELS]
            start = (order.index(self._last_panel) + 1) % len(order) if self._last_panel in order else 0
            chosen = next(order[(start + i) % len(order)] for i in range(len(order))
                          if order[(start + i) % len(order)] in by_panel)
            for panel_id, keys in by_panel.items():
                if panel_id != chosen:
                    self.data.dirty.update(keys)  # drawn on a later tick
            by_panel = {chosen: by_panel[chosen]}
        touched: set[str] = set()
        for key in sorted(k for keys in by_panel.values() for k in keys):
            panel_id = panel_for(key, has_step_lr)
            if panel_id is None:
                continue
            self._last_panel = panel_id
            buffer = self.data.series[key]
            panel = self.panels[panel_id]
            if panel_id == "lr" and panel.x_label != key[0]:
                panel.x_label = key[0]
                panel.getPlotItem().setLabel("bottom", key[0])
            panel.curve(key, symbols=key[0] == "epoch").setData(buffer.x, buffer.y)
            panel.bounds[key] = buffer.bounds
            touched.add(panel_id)
        for panel_id in touched:
            self.panels[panel_id].fit()
        self.redraws += 1

    def curve_points(self, panel_id: str) -> dict[str, int]:
        """Points held by each curve of a panel (tests: the chart gains points while a job runs)."""
        out: dict[str, int] = {}
        for key, item in self.panels[panel_id].curves.items():
            x, _y = item.getOriginalDataset()
            out[key[1]] = 0 if x is None else len(x)
        return out

    def _on_hover(self, panel: ChartPanel, pos: QPointF) -> None:
        plot = panel.getPlotItem()
        if not plot.sceneBoundingRect().contains(pos):
            return
        x_value = plot.vb.mapSceneToView(pos).x()
        parts = []
        for key, item in panel.curves.items():
            if not item.isVisible():
                continue
            x, y = item.getOriginalDataset()
            if x is None or not len(x):
                continue
            index = int(np.clip(np.searchsorted(x, x_value), 0, len(x) - 1))
            if index > 0 and abs(x[index - 1] - x_value) < abs(x[index] - x_value):
                index -= 1
            parts.append((x[index], f"{key[1]} {y[index]:.4g}"))
        if parts:
            self.hover.setText(f"{panel.x_label} {parts[0][0]:g}:  " + "   ".join(text for _x, text in parts))

    # -- export -----------------------------------------------------------------------------------
    def export_png(self, path: str | Path) -> bool:
        self.redraw(all_panels=True)
        return bool(self.grab().save(str(path)))

    def export_csv(self, path: str | Path) -> int:
        return self.data.write_csv(path)
