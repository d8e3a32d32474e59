"""The runner's persistence pieces on real SQLite files and real files: the spool (a batch that cannot
be written waits and goes in with the next), the worker.log writer that never raises, the bounded
reading of a worker's stdout, and the fast metric JSON (equal to json.dumps' meaning)."""

from __future__ import annotations

import io
import json
import queue
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from core.config import config_from_dict
from core.db.engine import open_store
from core.events import encode_event
from core.jobs import store as job_store
from core.jobs.runner import (
    MAX_LINE_CHARS,
    STRAY_LOG_LIMIT_BYTES,
    _JobLog,
    _Persistence,
    _read_events,
    _StrayOutput,
    _values_json,
)
from core.jobs.spool import SPOOL_FILE, EventSpool, read_spool


def _metrics(first: int, count: int) -> list[dict[str, Any]]:
    return [json.loads(encode_event("metrics", kind="step", epoch=1, step=step, values={"train/loss": 1.0 / step}))
            for step in range(first, first + count)]


def test_locked_database_batches_wait_in_the_spool_then_go_in_once(vp_home: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """matrix row 6: another connection holds the write lock past the busy timeout."""
    import core.db.engine

    monkeypatch.setattr(core.db.engine, "BUSY_TIMEOUT_MS", 50)
    store = open_store()
    job_id = job_store.create_job(store, config_from_dict({"dataset": str(tmp_path)}))
    persistence = _Persistence(store, job_id, EventSpool(tmp_path), {})
    persistence.write(_metrics(1, 5))

    locker = sqlite3.connect(store.db_file, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    persistence.write(_metrics(6, 5))
    persistence.write(_metrics(11, 5) + [json.loads(encode_event("log", message="not spooled"))])
    assert [e["step"] for e in read_spool(tmp_path / SPOOL_FILE)] == list(range(6, 16))
    assert persistence.disk_full is None  # locked is not full: the job goes on
    locker.execute("COMMIT")
    locker.close()

    persistence.write(_metrics(16, 5))
    steps = Counter(row.step for row in job_store.metric_rows(store, job_id))
    assert steps == Counter(range(1, 21))  # all, once each
    assert not (tmp_path / SPOOL_FILE).exists() and not persistence.spool.events


def test_full_database_names_it_and_keeps_the_batch(vp_home: Path, tmp_path: Path) -> None:
    """matrix row 5: the metrics transaction fails as on a full disk (rolled back, nothing half-written)."""
    store = open_store()
    job_id = job_store.create_job(store, config_from_dict({"dataset": str(tmp_path)}))
    gate = tmp_path / "full"
    gate.touch()
    persistence = _Persistence(store, job_id, EventSpool(tmp_path), {"enospc_at": "metrics", "enospc_while": str(gate)})
    persistence.write(_metrics(1, 3))
    assert persistence.disk_full is not None and persistence.disk_full.startswith(f"disk full ({store.db_file}, ")
    assert job_store.metric_count(store, job_id) == 0
    gate.unlink()
    persistence.write([])
    assert job_store.metric_count(store, job_id) == 3


def test_a_spool_line_cut_by_a_kill_is_skipped(tmp_path: Path) -> None:
    """matrix row 5: a runner killed mid-append leaves a partial last line; the rest is read back."""
    events = _metrics(1, 2)
    (tmp_path / SPOOL_FILE).write_text("".join(json.dumps(e) + "\n" for e in events) + '{"v":1,"type":"metr')
    assert read_spool(tmp_path / SPOOL_FILE) == events
    assert EventSpool(tmp_path).events == events


def test_worker_log_that_cannot_be_written_never_raises(tmp_path: Path) -> None:
    """matrix row 5: ENOSPC on worker.log is remembered, not raised into supervision."""
    job_log = _JobLog(tmp_path / "worker.log", {"enospc_at": "log"})
    job_log.append("a line\n")
    assert job_log.disk_full is not None and job_log.disk_full.startswith(f"disk full ({tmp_path / 'worker.log'}, ")
    unwritable = _JobLog(tmp_path / "missing" / "worker.log", {})
    unwritable.append("a line\n")  # another OSError: dropped, logged once, not a disk-full failure
    assert unwritable.disk_full is None


class _Traced(_StrayOutput):
    """Counts the most lines ever held at once (the bound, by construction)."""

    peak = 0

    def add(self, line: str) -> bool:
        flooded = super().add(line)
        _Traced.peak = max(_Traced.peak, len(self.buffered))
        return flooded


def test_stdout_flood_and_endless_line_are_read_in_bounded_pieces(tmp_path: Path) -> None:
    """matrix row 31: many short non-event lines and one line with no end, between real events."""
    text = (encode_event("hello", pid=1) + "\n" + "noise\n" * 200_000 + "x" * (3 * MAX_LINE_CHARS)
            + "\n" + encode_event("done", status="completed") + "\n")
    events: queue.Queue[dict[str, Any] | None] = queue.Queue()
    log_file = tmp_path / "worker.log"
    _read_events(io.StringIO(text), events, _Traced(_JobLog(log_file, {})))
    received = []
    while (event := events.get_nowait()) is not None:
        received.append(event["type"])
    assert received == ["hello", "warning", "done"]
    assert _Traced.peak <= 256
    logged = log_file.read_text(encoding="utf-8")
    assert len(logged) < STRAY_LOG_LIMIT_BYTES + MAX_LINE_CHARS + 4096 and "more lines" in logged


@pytest.mark.parametrize("values", [
    {"train/loss": 0.5, "lr": 1e-05, "val/map50": 0.0}, {}, {"a": float("nan")}, {"a": float("-inf")},
    {"a": 1}, {"a": True}, {"a": None}, {"quote\"name": 1.5}, {"é": 2.0}, {"a": -1e300, "b": 3.0},
])
def test_metric_json_means_what_json_dumps_means(values: dict[str, Any]) -> None:
    assert json.loads(_values_json(values)) == json.loads(json.dumps(values)) or values.get("a") != values.get("a")
