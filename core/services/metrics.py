"""A job's metrics for charts, live followers and exports — the read side of ``core.jobs.series``.

Charts never read every point: :func:`overview` gives each step metric over the job's whole run at
one min/max pair per pixel column (plus the few epoch rows), :func:`window` the same for the range a
zoomed or panned chart shows, down to the raw points. A window that follows a job run elsewhere (the
CLI, another window) asks :func:`updates` for what was written after its :class:`MetricCursor`.
:func:`export_csv` streams the full-resolution series, with progress and cancellation.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.jobs import series
from core.jobs.series import SeriesWindow
from core.services import Store

DEFAULT_WIDTH = 1200  # pixel columns when the caller does not know its width yet


@dataclass(frozen=True)
class MetricCursor:
    """Where a reader stands: the last step record (``seq``) and epoch row id it has."""

    step_seq: int = -1
    epoch_row_id: int = 0


@dataclass(frozen=True)
class PointRecord:
    """One metrics record as the charts take it (``kind`` "step" or "epoch")."""

    kind: str
    epoch: int
    step: int | None
    values: dict[str, float]


@dataclass(frozen=True)
class Overview:
    """A job's charts at open: every step metric over its run, every epoch record, and the cursor."""

    job_id: int
    steps: dict[str, SeriesWindow]
    epochs: list[PointRecord]
    cursor: MetricCursor
    step_range: tuple[int, int] | None  # first and last step
    step_records: int


@dataclass(frozen=True)
class Updates:
    records: list[PointRecord] = field(default_factory=list)
    cursor: MetricCursor = MetricCursor()


def _epoch_rows(store: Store, job_id: int, after_id: int) -> list[tuple[int, PointRecord]]:
    from core.tracking.mlflow_logger import metric_values_from_row

    with store.read() as session:
        rows = session.connection().exec_driver_sql(
            "SELECT id, epoch, step, loss, accuracy, learning_rate, extra_metrics, kind FROM training_metrics"
            " WHERE job_id = ? AND id > ? ORDER BY id", (job_id, after_id)).all()
    return [(row[0], PointRecord(row[7], row[1], row[2], metric_values_from_row(row[3], row[4], row[5], row[6])))
            for row in rows]


def overview(store: Store, job_id: int, width: int = DEFAULT_WIDTH) -> Overview:
    """Everything a job's charts show when it is opened: cost independent of the run's length."""
    epoch_rows = _epoch_rows(store, job_id, 0)
    with store.read() as session:
        conn = session.connection()
        extent = series.extent(conn, job_id)
        steps: dict[str, SeriesWindow] = {}
        if extent.step_first is not None and extent.step_last is not None:
            seqs = (0, extent.records)
            for name in series.series_names(conn, job_id):
                steps[name] = series.window(conn, job_id, name, extent.step_first, extent.step_last, width, seqs)
    cursor = MetricCursor(extent.records - 1, epoch_rows[-1][0] if epoch_rows else 0)
    step_range = (extent.step_first, extent.step_last) if extent.step_first is not None else None
    return Overview(job_id, steps, [record for _id, record in epoch_rows], cursor, step_range,  # type: ignore[arg-type]
                    extent.records)


def window(store: Store, job_id: int, names: list[str], x_from: float, x_to: float, width: int
           ) -> dict[str, SeriesWindow]:
    """The step metrics ``names`` over ``[x_from, x_to]`` at ``width`` pixel columns (raw once few enough)."""
    with store.read() as session:
        conn = session.connection()
        seqs = series.seq_range(conn, job_id, x_from, x_to)
        return {name: series.window(conn, job_id, name, x_from, x_to, width, seqs) for name in names}


def updates(store: Store, job_id: int, cursor: MetricCursor, limit: int = 50_000) -> Updates:
    """Records written after ``cursor``: step records first, then new epoch rows."""
    epoch_rows = _epoch_rows(store, job_id, cursor.epoch_row_id)
    with store.read() as session:
        steps = series.records_after(session.connection(), job_id, cursor.step_seq, limit)
    records = [PointRecord("step", r.epoch, r.step, r.values) for r in steps]
    records += [record for _id, record in epoch_rows]
    return Updates(records, MetricCursor(steps[-1].seq if steps else cursor.step_seq,
                                         epoch_rows[-1][0] if epoch_rows else cursor.epoch_row_id))


def _csv_value(value: float) -> str:
    return repr(float(value))


def export_csv(store: Store, job_id: int, path: str | Path, *,
               progress: Callable[[int, int], None] | None = None,
               cancelled: Callable[[], bool] | None = None) -> int:
    """Long format (kind, x, metric, value), one row per point, every step at full resolution.

    Streams chunk by chunk (memory stays flat at any run length); ``progress(done, total)`` after
    each chunk; ``cancelled()`` true stops and removes the partial file. Returns the rows written.
    """
    target = Path(path)
    written = 0
    with store.read() as session:
        total = series.extent(session.connection(), job_id).records
    try:
        with open(target, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["kind", "x", "metric", "value"])
            written += _write_steps(store, job_id, writer, total, progress, cancelled)
            for _id, record in _epoch_rows(store, job_id, 0):
                if record.kind != "epoch":
                    continue
                for name, value in sorted(record.values.items()):
                    writer.writerow(["epoch", record.epoch, name, _csv_value(value)])
                    written += 1
    except _Stop:
        target.unlink(missing_ok=True)
        raise InterruptedError(f"export of job {job_id}'s metrics to {target} cancelled") from None
    return written


class _Stop(Exception):
    pass


def _write_steps(store: Store, job_id: int, writer: csv.writer, total: int,  # type: ignore[valid-type]
                 progress: Callable[[int, int], None] | None, cancelled: Callable[[], bool] | None) -> int:
    written = done = 0
    with store.read() as session:
        for steps, _epochs, columns in series.iter_chunk_arrays(session.connection(), job_id):
            if cancelled is not None and cancelled():
                raise _Stop()
            for name in sorted(columns):
                values = columns[name]
                keep = ~np.isnan(values)
                # float32's shortest repr ("0.1", not "0.10000000149011612"), vectorised.
                texts = values[keep].astype(str).tolist()
                writer.writerows(("step", x, name, text) for x, text in zip(steps[keep].tolist(), texts, strict=True))  # type: ignore[attr-defined]
                written += len(texts)
            done += len(steps)
            if progress is not None:
                progress(done, total)
    return written
