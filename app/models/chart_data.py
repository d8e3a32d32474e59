"""Metric series of one job in growable numpy buffers (no Qt: built in worker threads, read by charts).

A series is keyed by (kind, name): kind "step" (x = global step) or "epoch" (x = epoch). Appending is
amortised O(1) (capacity doubles), and a chart reads ``x[:n]``/``y[:n]`` views without copying, so a
run with 100k steps costs nothing per event. Values from the store and values from live events meet
here: ``last_x`` per kind lets live events that the store already had be skipped.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from core.services import Store

SeriesKey = tuple[str, str]  # (kind, metric name)


class SeriesBuffer:
    def __init__(self, capacity: int = 256) -> None:
        self._x = np.empty(capacity, dtype=np.float64)
        self._y = np.empty(capacity, dtype=np.float64)
        self.n = 0
        # Running bounds (finite values only): charts fit their range without scanning 100k points.
        self.bounds = [math.inf, -math.inf, math.inf, -math.inf]  # x min, x max, y min, y max

    def append(self, x: float, y: float) -> None:
        if self.n == len(self._x):
            self._grow(self.n * 2)
        self._x[self.n] = x
        self._y[self.n] = y
        self.n += 1
        if math.isfinite(x) and math.isfinite(y):
            b = self.bounds
            b[0], b[1], b[2], b[3] = min(b[0], x), max(b[1], x), min(b[2], y), max(b[3], y)

    def extend(self, xs: np.ndarray, ys: np.ndarray) -> None:
        needed = self.n + len(xs)
        if needed > len(self._x):
            self._grow(max(needed, len(self._x) * 2))
        self._x[self.n:needed] = xs
        self._y[self.n:needed] = ys
        self.n = needed
        finite = np.isfinite(xs) & np.isfinite(ys)
        if finite.any():
            b = self.bounds
            b[0], b[1] = min(b[0], float(xs[finite].min())), max(b[1], float(xs[finite].max()))
            b[2], b[3] = min(b[2], float(ys[finite].min())), max(b[3], float(ys[finite].max()))

    def _grow(self, capacity: int) -> None:
        x = np.empty(capacity, dtype=np.float64)
        y = np.empty(capacity, dtype=np.float64)
        x[: self.n] = self._x[: self.n]
        y[: self.n] = self._y[: self.n]
        self._x, self._y = x, y

    @property
    def x(self) -> np.ndarray:
        return self._x[: self.n]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self.n]


class ChartData:
    """Every series of one job, plus what changed since the chart last drew it."""

    def __init__(self, job_id: int | None = None) -> None:
        self.job_id = job_id
        self.series: dict[SeriesKey, SeriesBuffer] = {}
        self.last_x: dict[str, float] = {"step": -math.inf, "epoch": -math.inf}
        self.dirty: set[SeriesKey] = set()
        self._steps_seen = 0
        self.cursor: Any = None  # the store's ``metrics.MetricCursor`` after the records held here
        self.step_range: tuple[float, float] | None = None  # first and last step in the store
        self.step_records = 0  # step records in the store when loaded (plus those added since)

    def set_series(self, key: SeriesKey, x: np.ndarray, y: np.ndarray) -> None:
        """Replace a series (a decimated or zoomed read of the store)."""
        buffer = SeriesBuffer(max(len(x), 16))
        buffer.extend(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
        self.series[key] = buffer
        self.dirty.add(key)

    def add(self, kind: str, epoch: int | None, step: int | None, values: dict[str, Any]) -> bool:
        """Add one metrics record; False when it was already there (same or earlier x)."""
        if kind == "step":
            x = float(step) if step is not None else float(self._steps_seen + 1)
        else:
            x = float(epoch or 0)
        if x <= self.last_x.get(kind, -math.inf):
            return False
        self.last_x[kind] = x
        if kind == "step":
            self._steps_seen += 1
            self.step_records += 1
            self.step_range = (self.step_range[0] if self.step_range else x, x)
        for name, value in values.items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            key = (kind, name)
            buffer = self.series.get(key)
            if buffer is None:
                buffer = self.series[key] = SeriesBuffer()
            buffer.append(x, float(value))
            self.dirty.add(key)
        return True

    def add_rows(self, rows: Iterable[tuple[str, int | None, int | None, dict[str, Any]]]) -> None:
        for kind, epoch, step, values in rows:
            self.add(kind, epoch, step, values)

    def take_dirty(self) -> set[SeriesKey]:
        dirty, self.dirty = self.dirty, set()
        return dirty

    def names(self, kind: str | None = None) -> list[str]:
        return sorted({name for k, name in self.series if kind is None or k == kind})

    def point_count(self) -> int:
        return sum(buffer.n for buffer in self.series.values())

    def write_csv(self, path: str | Path) -> int:
        """Long format (kind, x, metric, value): one row per point, loads straight into a pivot table."""
        written = 0
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["kind", "x", "metric", "value"])
            for (kind, name), buffer in sorted(self.series.items()):
                for x, y in zip(buffer.x.tolist(), buffer.y.tolist(), strict=True):
                    writer.writerow([kind, int(x) if float(x).is_integer() else x, name, repr(y)])
                    written += 1
        return written


def load_chart_data(store: Store, job_id: int, width: int | None = None) -> ChartData:
    """A job's charts from SQLite (worker thread): what makes curves survive an app restart.

    Step series come decimated for ``width`` pixel columns over the whole run (the service keeps
    every spike), so opening a 1M-step job costs what a 1k-step one does; epoch rows come whole.
    """
    from core.services import metrics

    view = metrics.overview(store, job_id, width or metrics.DEFAULT_WIDTH)
    data = ChartData(job_id)
    for name, window in view.steps.items():
        data.set_series(("step", name), window.x, window.y)
    if view.step_range is not None:
        data.last_x["step"] = float(view.step_range[1])
        data.step_range = (float(view.step_range[0]), float(view.step_range[1]))
    data.step_records = view.step_records
    data.add_rows((r.kind, r.epoch, r.step, r.values) for r in view.epochs if r.kind == "epoch")
    # Step rows of the original layout that a DB kept in training_metrics (written by older code).
    data.add_rows((r.kind, r.epoch, r.step, r.values) for r in view.epochs if r.kind == "step")
    data.cursor = view.cursor
    return data


def fetch_updates(store: Store, job_id: int, cursor: Any) -> Any:
    """New records of a job after ``cursor`` (a ``metrics.MetricCursor``): for jobs run elsewhere."""
    from core.services import metrics

    return metrics.updates(store, job_id, cursor)


def fetch_window(store: Store, job_id: int, names: list[str], x_from: float, x_to: float, width: int
                 ) -> dict[str, Any]:
    """Step series ``names`` over a zoomed range (worker thread): {name: SeriesWindow}."""
    from core.services import metrics

    return metrics.window(store, job_id, names, x_from, x_to, width)
