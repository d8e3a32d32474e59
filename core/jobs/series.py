"""Per-step metrics of a job, stored compactly and served to charts at any run length.

A day-long run logs ~1M steps; one ORM row and one JSON text per step made its charts open in 48 s
and cost ~115 bytes a step. Here a job's step records live in chunks of ``CHUNK_RECORDS``
(``step_chunks``: the steps and epochs zlib-packed, the time as float32 offsets, every metric's
values as a float32 column, NaN where a record lacks the metric), and each metric has a decimated
copy (``step_buckets``: min, max and last value of ``level`` consecutive records, at every level
of ``LEVELS``), updated in the same transaction as the chunk. A chart asks :func:`window` for an
x-range and a pixel width and gets at most one min/max pair per pixel column, read from the
coarsest level finer than a pixel, or the raw points once the range holds few enough: every spike
stays visible at every zoom, and the read costs the same at 1k or 1M steps.

Records are numbered per job (``seq``, from 0, in the order the runner wrote them): ``seq`` is what
a window that follows a running job asks for (:func:`records_after`). Values are float32 (7
significant digits: a chart, a CSV and MLflow need no more). Epoch rows stay in ``training_metrics``.

Every function takes a SQLAlchemy ``Connection`` (the runner's write transaction, a read session's
connection, or a migration's bind) and runs plain SQL: no ORM object per point.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

CHUNK_RECORDS = 4096
LEVELS = (64, 256, 1024, 4096, 16384)  # records per bucket, 4x apart: a read holds <= 4 buckets a pixel
MAX_RAW_PER_PIXEL = LEVELS[0]  # below this many records per pixel column the raw points are read
VALUE_DTYPE = np.float32


@dataclass(frozen=True)
class StepRecord:
    """One step's metrics: ``seq`` numbers the job's step records from 0."""

    seq: int
    epoch: int
    step: int
    time: float  # unix seconds
    values: dict[str, float]


@dataclass(frozen=True)
class SeriesWindow:
    """What a chart draws for one metric over an x-range: raw points, or min/max pairs per pixel."""

    name: str
    x: np.ndarray
    y: np.ndarray
    raw: bool
    level: int  # 1 for raw points, else the bucket size it was read from


@dataclass
class _Chunk:
    job_id: int
    seq0: int
    steps: np.ndarray  # int64
    epochs: np.ndarray  # int32
    times: np.ndarray  # float64 unix seconds
    columns: dict[str, np.ndarray]  # name -> float32 values, NaN where the record lacks it

    @property
    def n(self) -> int:
        return len(self.steps)


# -- encoding ----------------------------------------------------------------------------------------
def _pack_ints(values: np.ndarray, dtype: Any) -> bytes:
    deltas = np.diff(values.astype(np.int64), prepend=np.int64(0)).astype(dtype)
    return zlib.compress(deltas.tobytes(), 1)


def _unpack_ints(blob: bytes, dtype: Any) -> np.ndarray:
    return np.cumsum(np.frombuffer(zlib.decompress(blob), dtype=dtype), dtype=np.int64)


def _encode(chunk: _Chunk) -> dict[str, Any]:
    t0 = float(chunk.times[0])
    names = list(chunk.columns)
    matrix = np.stack([chunk.columns[name] for name in names]) if names else np.empty((0, chunk.n), VALUE_DTYPE)
    return {"job_id": chunk.job_id, "seq0": chunk.seq0, "n": chunk.n, "step_first": int(chunk.steps[0]),
            "step_last": int(chunk.steps[-1]), "epoch_last": int(chunk.epochs.max()), "t0": t0,
            "names": json.dumps(names), "steps": _pack_ints(chunk.steps, np.int64),
            "epochs": _pack_ints(chunk.epochs, np.int32),
            "times": (chunk.times - t0).astype(np.float32).tobytes(),
            "vals": matrix.astype(VALUE_DTYPE).tobytes()}


_CHUNK_COLUMNS = "job_id, seq0, n, t0, names, steps, epochs, times, vals"


def _decode(row: Any) -> _Chunk:
    job_id, seq0, n, t0, names_json, steps, epochs, times, vals = row
    names = json.loads(names_json)
    matrix = np.frombuffer(vals, dtype=VALUE_DTYPE).reshape(len(names), n)
    return _Chunk(job_id, seq0, _unpack_ints(steps, np.int64), _unpack_ints(epochs, np.int32).astype(np.int32),
                  np.frombuffer(times, dtype=np.float32).astype(np.float64) + t0,
                  {name: matrix[i].copy() for i, name in enumerate(names)})


# -- writing -----------------------------------------------------------------------------------------
_UPSERT_CHUNK = (
    "INSERT INTO step_chunks (job_id, seq0, n, step_first, step_last, epoch_last, t0, names, steps, epochs, times, vals)"
    " VALUES (:job_id, :seq0, :n, :step_first, :step_last, :epoch_last, :t0, :names, :steps, :epochs, :times, :vals)"
    " ON CONFLICT (job_id, seq0) DO UPDATE SET n = excluded.n, step_first = excluded.step_first,"
    " step_last = excluded.step_last, epoch_last = excluded.epoch_last, t0 = excluded.t0, names = excluded.names,"
    " steps = excluded.steps, epochs = excluded.epochs, times = excluded.times, vals = excluded.vals"
)
# Buckets fold into the stored one: min/max of both (NULL is an all-NaN bucket), the newest last value.
_UPSERT_BUCKET = (
    "INSERT INTO step_buckets (job_id, name, level, bucket, x0, x1, vmin, vmax, vlast)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (job_id, name, level, bucket) DO UPDATE SET x1 = excluded.x1,"
    " vmin = min(coalesce(vmin, excluded.vmin), coalesce(excluded.vmin, vmin)),"
    " vmax = max(coalesce(vmax, excluded.vmax), coalesce(excluded.vmax, vmax)),"
    " vlast = coalesce(excluded.vlast, vlast)"
)


def append(conn: Any, job_id: int, records: list[tuple[int, int | None, float, Mapping[str, Any]]]) -> int:
    """Add step records ``(epoch, step, unix time, {name: value})`` after the job's last one; returns
    the number added. A record without a step gets its position (seq + 1) as its step."""
    if not records:
        return 0
    chunk = _open_chunk(conn, job_id)
    start = chunk.seq0 + chunk.n if chunk is not None else _next_seq(conn, job_id)
    steps, epochs, times, columns = _arrays(records, start)
    _store_chunks(conn, job_id, chunk, start, steps, epochs, times, columns)
    _update_buckets(conn, job_id, start, steps, columns)
    return len(records)


def _arrays(records: list[tuple[int, int | None, float, Mapping[str, Any]]], start: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    count = len(records)
    steps = np.fromiter((step if step is not None else start + i + 1 for i, (_e, step, _t, _v) in enumerate(records)),
                        dtype=np.int64, count=count)
    epochs = np.fromiter((epoch or 0 for epoch, _s, _t, _v in records), dtype=np.int32, count=count)
    times = np.fromiter((t for _e, _s, t, _v in records), dtype=np.float64, count=count)
    columns: dict[str, np.ndarray] = {}
    for i, (_e, _s, _t, values) in enumerate(records):
        for name, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            column = columns.get(name)
            if column is None:
                column = columns[name] = np.full(count, np.nan, dtype=VALUE_DTYPE)
            column[i] = value
    return steps, epochs, times, columns


def _open_chunk(conn: Any, job_id: int) -> _Chunk | None:
    row = conn.exec_driver_sql(
        f"SELECT {_CHUNK_COLUMNS} FROM step_chunks WHERE job_id = ? ORDER BY seq0 DESC LIMIT 1", (job_id,)
    ).first()
    if row is None or row[2] >= CHUNK_RECORDS:
        return None
    return _decode(row)


def _next_seq(conn: Any, job_id: int) -> int:
    row = conn.exec_driver_sql("SELECT seq0 + n FROM step_chunks WHERE job_id = ? ORDER BY seq0 DESC LIMIT 1",
                               (job_id,)).first()
    return int(row[0]) if row else 0


def _store_chunks(conn: Any, job_id: int, chunk: _Chunk | None, start: int, steps: np.ndarray, epochs: np.ndarray,
                  times: np.ndarray, columns: dict[str, np.ndarray]) -> None:
    if chunk is not None:  # the open chunk takes what fits; the rest starts new chunks
        names = list(dict.fromkeys([*chunk.columns, *columns]))
        steps = np.concatenate([chunk.steps, steps])
        epochs = np.concatenate([chunk.epochs, epochs])
        times = np.concatenate([chunk.times, times])
        columns = {name: np.concatenate([_column(chunk.columns, name, chunk.n), _column(columns, name, len(times)
                                                                                         - chunk.n)])
                   for name in names}
        start = chunk.seq0
    rows = []
    for offset in range(0, len(steps), CHUNK_RECORDS):
        part = slice(offset, offset + CHUNK_RECORDS)
        piece = _Chunk(job_id, start + offset, steps[part], epochs[part], times[part],
                       {name: values[part] for name, values in columns.items()
                        if not np.isnan(values[part]).all()})
        rows.append(_encode(piece))
    conn.exec_driver_sql(_UPSERT_CHUNK, rows) if len(rows) > 1 else conn.exec_driver_sql(_UPSERT_CHUNK, rows[0])


def _column(columns: dict[str, np.ndarray], name: str, count: int) -> np.ndarray:
    found = columns.get(name)
    return found if found is not None else np.full(count, np.nan, dtype=VALUE_DTYPE)


def _update_buckets(conn: Any, job_id: int, start: int, steps: np.ndarray, columns: dict[str, np.ndarray]) -> None:
    rows: list[tuple[Any, ...]] = []
    for level in LEVELS:
        rows.extend(_bucket_rows(job_id, level, start, steps, columns))
    if rows:
        conn.exec_driver_sql(_UPSERT_BUCKET, rows)


def _bucket_rows(job_id: int, level: int, start: int, steps: np.ndarray, columns: dict[str, np.ndarray]
                 ) -> Iterator[tuple[Any, ...]]:
    seqs = np.arange(start, start + len(steps))
    buckets = seqs // level
    edges = np.flatnonzero(np.diff(buckets, prepend=buckets[0] - 1))
    ends = np.append(edges[1:], len(seqs)) - 1
    x0, x1, ids = steps[edges].tolist(), steps[ends].tolist(), buckets[edges].tolist()
    for name, values in columns.items():
        lows, highs, lasts = _reduce(values, edges)
        for i, bucket in enumerate(ids):
            yield (job_id, name, level, bucket, x0[i], x1[i], lows[i], highs[i], lasts[i])


def _reduce(values: np.ndarray, edges: np.ndarray) -> tuple[list[Any], list[Any], list[Any]]:
    """Per segment: min, max and last finite value (None when the segment has none)."""
    finite = np.isfinite(values)
    lows = np.fmin.reduceat(np.where(finite, values, np.nan), edges)
    highs = np.fmax.reduceat(np.where(finite, values, np.nan), edges)
    positions = np.where(finite, np.arange(len(values)), -1)
    last_positions = np.maximum.reduceat(positions, edges)
    lasts = [float(values[p]) if p >= 0 else None for p in last_positions.tolist()]
    as_list = [None if math.isnan(v) else v for v in lows.astype(np.float64).tolist()]
    return as_list, [None if math.isnan(v) else v for v in highs.astype(np.float64).tolist()], lasts


# -- resume: the epochs a resumed run re-does go ------------------------------------------------------
def drop_from_epoch(conn: Any, job_id: int, epoch: int) -> None:
    """Remove the records of ``epoch`` and later (from the first such record on) and their buckets."""
    row = conn.exec_driver_sql(
        f"SELECT {_CHUNK_COLUMNS} FROM step_chunks WHERE job_id = ? AND epoch_last >= ? ORDER BY seq0 LIMIT 1",
        (job_id, epoch)).first()
    if row is None:
        return
    chunk = _decode(row)
    cut = chunk.seq0 + int(np.argmax(chunk.epochs >= epoch))
    conn.exec_driver_sql("DELETE FROM step_chunks WHERE job_id = ? AND seq0 >= ?", (job_id, chunk.seq0))
    kept = cut - chunk.seq0
    if kept:
        part = slice(0, kept)
        _store_chunks(conn, job_id, None, chunk.seq0, chunk.steps[part], chunk.epochs[part], chunk.times[part],
                      {name: values[part] for name, values in chunk.columns.items()})
    _rebuild_buckets_from(conn, job_id, cut)


def _rebuild_buckets_from(conn: Any, job_id: int, seq: int) -> None:
    """Buckets from the one holding ``seq`` on go; the partial ones before ``seq`` are rebuilt."""
    for level in LEVELS:
        first = seq // level
        conn.exec_driver_sql("DELETE FROM step_buckets WHERE job_id = ? AND level = ? AND bucket >= ?",
                             (job_id, level, first))
        begin = first * level
        if begin < seq:
            chunks = list(_chunks_between(conn, job_id, begin, seq))
            steps, columns = _slice_records(chunks, begin, seq)
            rows = list(_bucket_rows(job_id, level, begin, steps, columns))
            if rows:
                conn.exec_driver_sql(_UPSERT_BUCKET, rows)


# -- reading -----------------------------------------------------------------------------------------
def _chunks_between(conn: Any, job_id: int, seq_from: int, seq_to: int) -> Iterator[_Chunk]:
    """Chunks holding records ``seq_from <= seq < seq_to``, in order."""
    rows = conn.exec_driver_sql(
        f"SELECT {_CHUNK_COLUMNS} FROM step_chunks WHERE job_id = ? AND seq0 < ? AND seq0 > ? AND seq0 + n > ?"
        " ORDER BY seq0", (job_id, seq_to, seq_from - CHUNK_RECORDS, seq_from)).all()  # chunks hold <= CHUNK_RECORDS
    return (_decode(row) for row in rows)


def _slice_records(chunks: Iterable[_Chunk], seq_from: int, seq_to: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    steps: list[np.ndarray] = []
    parts: list[tuple[int, dict[str, np.ndarray]]] = []
    for chunk in chunks:
        lo, hi = max(seq_from - chunk.seq0, 0), min(seq_to - chunk.seq0, chunk.n)
        steps.append(chunk.steps[lo:hi])
        parts.append((hi - lo, {name: values[lo:hi] for name, values in chunk.columns.items()}))
    names = list(dict.fromkeys(name for _n, cols in parts for name in cols))
    columns = {name: np.concatenate([_column(cols, name, n) for n, cols in parts]) for name in names}
    return (np.concatenate(steps) if steps else np.empty(0, np.int64)), columns


def series_names(conn: Any, job_id: int) -> list[str]:
    rows = conn.exec_driver_sql("SELECT DISTINCT name FROM step_buckets WHERE job_id = ? AND level = ?",
                                (job_id, LEVELS[-1])).all()
    return sorted(row[0] for row in rows)


@dataclass(frozen=True)
class SeriesExtent:
    records: int  # the next seq
    step_first: int | None
    step_last: int | None


def extent(conn: Any, job_id: int) -> SeriesExtent:
    row = conn.exec_driver_sql(
        "SELECT (SELECT seq0 + n FROM step_chunks WHERE job_id = :j ORDER BY seq0 DESC LIMIT 1),"
        " (SELECT step_first FROM step_chunks WHERE job_id = :j ORDER BY seq0 LIMIT 1),"
        " (SELECT step_last FROM step_chunks WHERE job_id = :j ORDER BY seq0 DESC LIMIT 1)", {"j": job_id}).first()
    return SeriesExtent(int(row[0] or 0), row[1], row[2])


def _seq_at(conn: Any, job_id: int, step: float, *, after: bool) -> int:
    """The seq of the first record with step >= ``step`` (``after``: step > ``step``)."""
    row = conn.exec_driver_sql(
        f"SELECT {_CHUNK_COLUMNS} FROM step_chunks WHERE job_id = ? AND step_last {'>' if after else '>='} ?"
        " ORDER BY step_last, seq0 LIMIT 1", (job_id, step)).first()  # steps rise with seq: the index serves it
    if row is None:
        return extent(conn, job_id).records
    chunk = _decode(row)
    return chunk.seq0 + int(np.searchsorted(chunk.steps, step, side="right" if after else "left"))


def seq_range(conn: Any, job_id: int, x_from: float, x_to: float) -> tuple[int, int]:
    """The records with ``x_from <= step <= x_to``: ``seq_from <= seq < seq_to``."""
    return _seq_at(conn, job_id, x_from, after=False), _seq_at(conn, job_id, x_to, after=True)


def window(conn: Any, job_id: int, name: str, x_from: float, x_to: float, width: int,
           seqs: tuple[int, int] | None = None) -> SeriesWindow:
    """``name``'s points with ``x_from <= step <= x_to`` for a chart ``width`` pixels wide: at most one
    min/max pair per pixel column, from the coarsest level whose buckets are narrower than a column,
    or the raw points when the range holds fewer than ``MAX_RAW_PER_PIXEL`` records per column."""
    width = max(int(width), 1)
    seq_from, seq_to = seqs or seq_range(conn, job_id, x_from, x_to)
    per_pixel = (seq_to - seq_from) / width
    if per_pixel < MAX_RAW_PER_PIXEL:
        steps, columns = _slice_records(_chunks_between(conn, job_id, seq_from, seq_to), seq_from, seq_to)
        values = columns.get(name, np.empty(0, VALUE_DTYPE))
        keep = np.isfinite(values) if len(values) else np.zeros(0, bool)
        x, y = steps[keep].astype(np.float64), values[keep].astype(np.float64)
        if len(x) <= 2 * width:
            return SeriesWindow(name, x, y, raw=True, level=1)
        return _to_pixels(name, x, x, y, y, x_from, x_to, width, level=1)
    level = max(level for level in LEVELS if level <= per_pixel)
    rows = conn.exec_driver_sql(
        "SELECT x0, x1, vmin, vmax FROM step_buckets WHERE job_id = ? AND name = ? AND level = ?"
        " AND bucket BETWEEN ? AND ? AND vmin IS NOT NULL ORDER BY bucket",
        (job_id, name, level, seq_from // level, (seq_to - 1) // level)).all()
    if not rows:
        return SeriesWindow(name, np.empty(0), np.empty(0), raw=False, level=level)
    table = np.array([tuple(row) for row in rows], dtype=np.float64)  # tuples: SQLAlchemy rows convert slowly
    return _to_pixels(name, table[:, 0], table[:, 1], table[:, 2], table[:, 3], x_from, x_to, width, level=level)


def _to_pixels(name: str, x0: np.ndarray, x1: np.ndarray, lows: np.ndarray, highs: np.ndarray, x_from: float,
               x_to: float, width: int, *, level: int) -> SeriesWindow:
    """Fold buckets (or points) into pixel columns: each column is drawn as its min then its max."""
    span = max(x_to - x_from, 1e-9)
    centre = (x0 + x1) / 2
    columns = np.clip(((centre - x_from) / span * width).astype(np.int64), 0, width - 1)
    edges = np.flatnonzero(np.diff(columns, prepend=columns[0] - 1))
    ends = np.append(edges[1:], len(columns)) - 1
    lo, hi = np.minimum.reduceat(lows, edges), np.maximum.reduceat(highs, edges)
    x = np.repeat((x0[edges] + x1[ends]) / 2, 2)
    y = np.empty(2 * len(edges))
    y[0::2], y[1::2] = lo, hi
    return SeriesWindow(name, x, y, raw=False, level=level)


def records_after(conn: Any, job_id: int, after_seq: int, limit: int | None = None) -> list[StepRecord]:
    """The job's step records with ``seq > after_seq`` (-1 for all), oldest first."""
    seq_to = extent(conn, job_id).records
    if limit is not None:
        seq_to = min(seq_to, after_seq + 1 + limit)
    return list(iter_records(conn, job_id, after_seq + 1, seq_to))


def iter_records(conn: Any, job_id: int, seq_from: int = 0, seq_to: int | None = None) -> Iterator[StepRecord]:
    end = extent(conn, job_id).records if seq_to is None else seq_to
    for chunk in _chunks_between(conn, job_id, seq_from, end):
        yield from _chunk_records(chunk, max(seq_from - chunk.seq0, 0), min(end - chunk.seq0, chunk.n))


def _chunk_records(chunk: _Chunk, lo: int, hi: int) -> Iterator[StepRecord]:
    names = list(chunk.columns)
    matrix = np.stack([chunk.columns[name][lo:hi].astype(np.float64) for name in names]) if names else None
    steps, epochs, times = chunk.steps[lo:hi].tolist(), chunk.epochs[lo:hi].tolist(), chunk.times[lo:hi].tolist()
    rows = matrix.T.tolist() if matrix is not None else [[] for _ in steps]
    for i, values in enumerate(rows):
        yield StepRecord(chunk.seq0 + lo + i, epochs[i], steps[i], times[i],
                         {name: value for name, value in zip(names, values, strict=True) if not math.isnan(value)})


def iter_chunk_arrays(conn: Any, job_id: int) -> Iterator[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]]:
    """(steps, epochs, {name: values}) per chunk: the full-resolution series for exports, fast."""
    last = conn.exec_driver_sql("SELECT max(seq0) FROM step_chunks WHERE job_id = ?", (job_id,)).scalar()
    seq = -1
    while last is not None and seq < last:
        row = conn.exec_driver_sql(f"SELECT {_CHUNK_COLUMNS} FROM step_chunks WHERE job_id = ? AND seq0 > ?"
                                   " ORDER BY seq0 LIMIT 1", (job_id, seq)).first()
        if row is None:
            return
        chunk = _decode(row)
        seq = chunk.seq0
        yield chunk.steps, chunk.epochs, chunk.columns
