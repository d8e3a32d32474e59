"""Supervise one training worker process and persist what it reports.

The worker is the same executable with the ``worker`` sub-command (so it also works frozen). It
writes JSON-lines events on stdout (``core.events``); stderr goes to the run dir's log (``RunDir.log``).
A reader thread turns lines into events; the runner thread persists them in batches (one write
transaction per batch, never one per metric), forwards them to listeners and to ``on_event``, and
enforces cancellation: stop file → SIGTERM after ``grace_seconds`` → SIGKILL.

Nothing the worker or the disk does may end supervision with the worker still running: a batch that
cannot be written to SQLite waits in the job's spool (``core.jobs.spool``) and goes in with the next
one; ``worker.log`` writes never raise; lines on stdout that are not events are bounded (a flood is
counted, not kept in memory); a full disk (database, spool or log) stops the worker and fails the
job with ``core.files.disk_full_message``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select, update

from core import platform
from core.db.engine import Store
from core.db.models import Artifact, Checkpoint, TrainingJob, utcnow
from core.events import PROTOCOL_VERSION, ProtocolError, decode_event, describe_event
from core.faults import parse_faults
from core.files import MB, disk_full_message, inject_disk_full, is_disk_full
from core.jobs import JobState, series
from core.jobs import store as job_store
from core.jobs.listeners import JobListener, call_safely
from core.jobs.spawn import StandbyWorker, start_worker_process, worker_command
from core.jobs.spool import EventSpool
from core.rundir import RunDir
from core.settings import Settings

log = logging.getLogger(__name__)

EventCallback = Callable[[int, dict[str, Any]], None]
FLUSH_INTERVAL_S = 0.25
FLUSH_MAX_EVENTS = 2000
EVENT_QUEUE_LIMIT = 4 * FLUSH_MAX_EVENTS  # a worker far ahead of the runner waits on its pipe
MAX_LINE_CHARS = 4 * MB  # a longer stdout line is read in pieces (none of them an event)
STRAY_BUFFER_LINES = 256  # non-event stdout lines held before they are appended to worker.log
STRAY_LOG_LIMIT_BYTES = 4 * MB  # per job; past it such lines are only counted
STRAY_PREFIX = "[stdout] "  # how worker.log marks them
LOG_TAIL_LINES = 30


def log_tail(log_file: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with open(log_file, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@functools.lru_cache(maxsize=64)
def _timestamp(unix_seconds: int) -> str:
    """SQLAlchemy's SQLite DateTime text format; cached because a batch shares a few seconds."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(unix_seconds))


_SIMPLE_KEY = re.compile(r"^[A-Za-z0-9_./@ -]+$")
_JSON_TEMPLATES: dict[tuple[str, ...], str | None] = {}  # metric names → '{"name":%s,…}'; a job has a few
_float_repr = float.__repr__  # TypeError for anything not a float (ints, bools, strings, None)


def _json_template(names: tuple[str, ...]) -> str | None:
    if len(_JSON_TEMPLATES) > 4096:
        _JSON_TEMPLATES.clear()
    if not all(_SIMPLE_KEY.match(name) for name in names):
        return None
    return "{" + ",".join(f'"{name}":%s' for name in names) + "}"


def _values_json(values: dict[str, float]) -> str:
    """JSON for a {metric name: float} dict, ~2x faster than json.dumps on the persistence hot path:
    one cached template per set of names, filled with the floats' reprs.

    Falls back to json.dumps for anything unusual (names needing escapes, NaN/inf, non-floats).
    """
    names = tuple(values)
    template = _JSON_TEMPLATES.get(names, "")
    if template == "":
        template = _JSON_TEMPLATES[names] = _json_template(names)
    try:
        numbers = tuple(map(_float_repr, values.values()))
    except TypeError:
        return json.dumps(values)
    if template is None or "n" in "".join(numbers):  # a float's repr has an "n" only as nan or inf
        return json.dumps(values)
    return template % numbers


_INSERT_METRIC_SQL = (
    "INSERT INTO training_metrics (job_id, epoch, step, kind, loss, accuracy, learning_rate, extra_metrics, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class _EventBatch:
    """Turns a batch of events into rows; one write transaction per batch (all of it or none)."""

    def __init__(self, job_id: int, faults: dict[str, str] | None = None) -> None:
        self.job_id = job_id
        self.faults = faults or {}

    def persist(self, store: Store, events: list[dict[str, Any]]) -> None:
        metric_rows: list[tuple[Any, ...]] = []
        job_values: dict[str, Any] = {}
        checkpoints: list[dict[str, Any]] = []
        artifacts: list[dict[str, Any]] = []
        step_records: list[tuple[Any, ...]] = []
        metric_row, add_row, add_step = self._metric_row, metric_rows.append, step_records.append  # the hot loop
        for event in events:
            kind = event["type"]
            if kind == "metrics":
                if event.get("kind") == "step":  # compact series (core.jobs.series); epochs keep their rows
                    add_step((int(event.get("epoch") or 0), event.get("step"), float(event.get("t") or time.time()),
                              event.get("values") or {}))
                else:
                    add_row(metric_row(event))
            elif kind == "progress":
                job_values.update(current_epoch=event.get("epoch"), current_step=event.get("step"),
                                  steps_per_epoch=event.get("steps"))
            elif kind == "checkpoint":
                checkpoints.append(event)
            elif kind == "artifact":
                artifacts.append(event)
            elif kind == "hello":
                job_values["worker_pid"] = event.get("pid")
            elif kind == "dataset" and event.get("num_classes") is not None:
                job_values["num_classes"] = int(event["num_classes"])
            elif kind == "done":
                if event.get("best_metric_name"):
                    job_values.update(best_metric_name=event["best_metric_name"],
                                      best_metric_value=event.get("best_metric_value"))
                if event.get("epochs_completed") is not None:
                    job_values["current_epoch"] = event["epochs_completed"]
        if not (metric_rows or step_records or job_values or checkpoints or artifacts):
            return
        with store.write() as session:
            if step_records:
                series.append(session.connection(), self.job_id, step_records)
            if metric_rows:
                # Straight to the driver's executemany: the ORM/Core per-row processing costs ~4x here.
                session.connection().exec_driver_sql(_INSERT_METRIC_SQL, metric_rows)
            for event in checkpoints:
                row = session.scalars(
                    select(Checkpoint).where(Checkpoint.job_id == self.job_id, Checkpoint.kind == event["kind"])
                ).first()
                if row is None:
                    row = Checkpoint(job_id=self.job_id, kind=event["kind"], path=event["path"])
                    session.add(row)
                row.path = event["path"]
                row.sha256 = event.get("sha256")
                row.size_bytes = event.get("size")
                row.epoch = event.get("epoch")
                row.metric_name = event.get("metric_name")
                row.metric_value = event.get("metric_value")
                row.sync_state = "local"
                row.r2_url = None
                row.updated_at = utcnow()
                if event["kind"] == "best" and event.get("metric_name"):
                    job_values.update(best_metric_name=event["metric_name"], best_metric_value=event.get("metric_value"))
            for event in artifacts:
                exists = session.scalars(
                    select(Artifact.id).where(Artifact.job_id == self.job_id, Artifact.path == event["path"])
                ).first()
                if exists is None:
                    session.add(Artifact(job_id=self.job_id, kind=event.get("kind", "file"), path=event["path"]))
            if job_values:
                session.execute(update(TrainingJob).where(TrainingJob.id == self.job_id).values(**job_values))
            inject_disk_full("metrics", store.db_file, self.faults)  # before the commit: all rolled back

    def _metric_row(self, event: dict[str, Any]) -> tuple[Any, ...]:
        values: dict[str, float] = event.get("values") or {}
        kind = event.get("kind", "epoch")
        loss, accuracy, learning_rate = job_store.original_columns(kind, values)
        stamp = float(event.get("t") or time.time())
        second = int(stamp)
        created = f"{_timestamp(second)}.{int((stamp - second) * 1e6):06d}"
        return (self.job_id, int(event.get("epoch") or 0), event.get("step"), kind, loss, accuracy, learning_rate,
                _values_json(values), created)


class _Persistence:
    """The runner's writes of event batches: a batch whose transaction fails (locked database, full
    disk, I/O error) waits in the job's spool and is written, in order, with the next batch that
    succeeds — nothing lost, nothing twice. ``disk_full`` is set once the database or the spool is full."""

    def __init__(self, store: Store, job_id: int, spool: EventSpool, faults: dict[str, str]) -> None:
        self.store = store
        self.job_id = job_id
        self.batcher = _EventBatch(job_id, faults)
        self.spool = spool
        self.disk_full: str | None = None
        self._failing = False

    def write(self, events: list[dict[str, Any]]) -> None:
        waiting = self.spool.events
        try:
            self.batcher.persist(self.store, waiting + events if waiting else events)
        except Exception as exc:
            self._keep(events, exc)
            return
        if waiting:
            log.info("job %d: wrote %d spooled events", self.job_id, len(waiting))
            self.spool.clear()
        self._failing = False

    def _keep(self, events: list[dict[str, Any]], exc: Exception) -> None:
        if not self._failing:
            log.warning("job %d: could not write events (%s); they wait in %s", self.job_id, exc, self.spool.path)
        self._failing = True
        if is_disk_full(exc) and self.disk_full is None:
            self.disk_full = disk_full_message(self.store.db_file)
        try:
            self.spool.keep(events)
        except OSError as spool_exc:  # still queued in memory: lost only if this process dies too
            log.warning("job %d: could not write %s: %s", self.job_id, self.spool.path, spool_exc)
            if is_disk_full(spool_exc) and self.disk_full is None:
                self.disk_full = disk_full_message(self.spool.path)


class _JobLog:
    """``worker.log`` as the runner appends to it, from the reader and the runner threads.

    It never raises: supervision goes on whatever happens to the log. A full disk is remembered
    (``disk_full``: the runner then stops the worker and fails the job); other write errors are
    logged once and those lines dropped.
    """

    def __init__(self, path: Path, faults: dict[str, str]) -> None:
        self.path = path
        self.faults = faults
        self.disk_full: str | None = None
        self._lock = threading.Lock()
        self._warned = False

    def append(self, text: str) -> None:
        with self._lock:
            try:
                inject_disk_full("log", self.path, self.faults)
                with open(self.path, "a", encoding="utf-8") as handle:
                    handle.write(text)
            except OSError as exc:
                self._failed(exc)

    def _failed(self, exc: OSError) -> None:
        if is_disk_full(exc) and self.disk_full is None:
            self.disk_full = disk_full_message(self.path)
        if not self._warned:
            self._warned = True
            log.warning("could not write %s: %s", self.path, exc)

    def append_events(self, events: list[dict[str, Any]]) -> None:
        """Human-readable events join the worker's stderr in worker.log: one log for the log pane."""
        lines = []
        for event in events:
            text = describe_event(event)
            if text is None:
                continue
            stamp = time.strftime("%H:%M:%S", time.localtime(event.get("t", time.time())))
            lines.append(f"{stamp} {text}")
            if event["type"] == "error" and event.get("traceback"):
                lines.append(str(event["traceback"]))
        if lines:
            self.append("\n".join(lines) + "\n")


class _StrayOutput:
    """Lines on the worker's stdout that are not events (a library printing): they go to worker.log,
    never pile up in memory. At most ``STRAY_BUFFER_LINES`` wait for a write; past
    ``STRAY_LOG_LIMIT_BYTES`` a job's lines are only counted (a flood may not fill the disk either),
    and the count is written at the end."""

    def __init__(self, job_log: _JobLog) -> None:
        self.job_log = job_log
        self.buffered: list[str] = []
        self.logged_chars = 0
        self.dropped_lines = 0
        self.dropped_chars = 0

    def add(self, line: str) -> bool:
        """Keep ``line``; True for the first line over the limit (the reader then warns the user)."""
        if self.logged_chars >= STRAY_LOG_LIMIT_BYTES:
            self.dropped_lines += 1
            self.dropped_chars += len(line)
            return self.dropped_lines == 1
        self.buffered.append(line)
        self.logged_chars += len(line) + len(STRAY_PREFIX) + 1
        if len(self.buffered) >= STRAY_BUFFER_LINES:
            self.flush()
        return False

    def flush(self) -> None:
        if self.buffered:
            self.job_log.append("".join(f"{STRAY_PREFIX}{line}\n" for line in self.buffered))
            self.buffered = []

    def close(self) -> None:
        self.flush()
        if self.dropped_lines:
            self.job_log.append(f"{STRAY_PREFIX}… {overflow_note(self.dropped_lines, self.dropped_chars)}\n")


def overflow_note(lines: int, chars: int) -> str:
    return (f"{lines} more lines ({chars / MB:.1f} MB) of worker output that were not events, not kept "
            f"(worker.log keeps the first {STRAY_LOG_LIMIT_BYTES // MB} MB of them)")


def _flood_warning() -> dict[str, Any]:
    message = (f"the worker wrote over {STRAY_LOG_LIMIT_BYTES // MB} MB of lines that are not events on its "
               "stdout; the rest is counted, not kept")
    return {"v": PROTOCOL_VERSION, "type": "warning", "t": time.time(), "message": message}


class JobRunner:
    """Runs one job to a final state. Call :meth:`run` from a thread that may block."""

    def __init__(
        self,
        store: Store,
        *,
        listeners: Iterable[JobListener] = (),
        on_event: EventCallback | None = None,
        grace_seconds: float = 10.0,
        term_seconds: float = 5.0,
    ) -> None:
        self.store = store
        self.listeners = list(listeners)
        self.on_event = on_event
        self.grace_seconds = grace_seconds
        self.term_seconds = term_seconds

    # ------------------------------------------------------------------ set-up
    def _prepare_run_dir(self, job: TrainingJob, resume: bool) -> RunDir:
        run = RunDir.of(job.output_dir, job.id)
        run.root.mkdir(parents=True, exist_ok=True)
        run.stop.unlink(missing_ok=True)
        # The effective config, as the worker will use it (args.yaml, like Ultralytics' runs).
        run.args.write_text(job.config_yaml or "", encoding="utf-8")
        run.write_job_info({"job_id": job.id, "project_id": job.project_id, "resume": resume,
                            "memory_budget_mb": Settings.load(self.store).memory_budget_mb})
        return run

    # ------------------------------------------------------------------ main
    def run(self, job_id: int, *, claimed: bool = False, standby: StandbyWorker | None = None) -> str:
        """``standby``: a worker started ahead (``core.jobs.spawn``) to hand this job to; a plain
        worker is started if it is gone."""
        if not claimed and not job_store.claim_job(self.store, job_id):
            raise job_store.JobError(f"job {job_id} is not queued; it cannot be started")
        job = job_store.get_job(self.store, job_id)
        self._write_leftover_spool(job)
        resume = bool(job.resume_requested)
        if resume:
            last = job_store.latest_checkpoint(self.store, job_id, "last")
            if last is not None and last.epoch is not None:
                job_store.drop_metrics_from_epoch(self.store, job_id, last.epoch + 1)
        run = self._prepare_run_dir(job, resume)
        log_file = run.log
        for listener in self.listeners:
            call_safely(listener, "on_job_start", job_id)

        with open(log_file, "ab") as log_handle:
            log_handle.write(f"\n=== worker start {time.strftime('%Y-%m-%d %H:%M:%S')} resume={resume} ===\n".encode())
            log_handle.flush()
            try:
                process = standby.hand_over(run.root, resume=resume, log=log_handle) if standby else None
                if process is None:
                    process = start_worker_process(worker_command(run.root, resume=resume), stdin=subprocess.DEVNULL,
                                                   stderr=log_handle, cwd=run.root)
            except OSError as exc:
                job_store.finish_job(self.store, job_id, "failed", error=f"could not start the worker: {exc}")
                self._notify_end(job_id, "failed")
                return "failed"
            job_store.update_job(self.store, job_id, worker_pid=process.pid)
            status = self._supervise(job_id, process, run)
        self._notify_end(job_id, status)
        return status

    def _write_leftover_spool(self, job: TrainingJob) -> None:
        """Events an earlier runner of this job could not write go in first (before a resume drops the
        epochs after its checkpoint). If they still cannot, they stay spooled for this run's writes."""
        spool = EventSpool(RunDir.of(job.output_dir, job.id).root)
        if spool.events:
            _Persistence(self.store, job.id, spool, {}).write([])

    def _notify_end(self, job_id: int, status: str) -> None:
        if self.on_event:
            self.on_event(job_id, {"type": "job_end", "status": status})
        for listener in self.listeners:
            call_safely(listener, "on_job_end", job_id, status)

    def _supervise(self, job_id: int, process: subprocess.Popen[str], run: RunDir) -> JobState:
        faults = parse_faults(os.environ.get("VP_FAULT", ""))
        job_log = _JobLog(run.log, faults)
        persistence = _Persistence(self.store, job_id, EventSpool(run.root), faults)
        try:
            return self._watch(job_id, process, run, job_log, persistence)
        except BaseException:
            # Whatever broke here, the worker is not left running with nobody reading its pipe.
            platform.kill_tree(process)
            raise

    def _watch(self, job_id: int, process: subprocess.Popen[str], run: RunDir, job_log: _JobLog,
               persistence: _Persistence) -> JobState:
        events: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=EVENT_QUEUE_LIMIT)
        assert process.stdout is not None
        reader = threading.Thread(target=_read_events, args=(process.stdout, events, _StrayOutput(job_log)),
                                  daemon=True, name=f"job-{job_id}-reader")
        reader.start()
        pending: list[dict[str, Any]] = []
        last_flush = time.monotonic()
        stop_file = run.stop
        cancel_seen_at: float | None = None
        term_sent_at: float | None = None
        done_event: dict[str, Any] | None = None
        error_event: dict[str, Any] | None = None
        stream_open = True

        while stream_open or pending:
            try:
                event = events.get(timeout=FLUSH_INTERVAL_S) if stream_open else None
            except queue.Empty:
                event = None
            else:
                if event is None:
                    stream_open = False
                else:
                    pending.append(event)
                    if event["type"] == "done":
                        done_event = event
                    elif event["type"] == "error":
                        error_event = event
            now = time.monotonic()
            if pending and (not stream_open or len(pending) >= FLUSH_MAX_EVENTS or now - last_flush >= FLUSH_INTERVAL_S):
                self._flush(job_id, persistence, pending, job_log)
                pending = []
                last_flush = now
            # Cancellation: the stop file is the request (written by `cancel`, the GUI, or this process);
            # a full disk stops the worker at once (the stop file may not even be writable).
            if process.poll() is None:
                if cancel_seen_at is None and stop_file.exists():
                    cancel_seen_at = now
                disk_full = job_log.disk_full or persistence.disk_full
                grace_over = cancel_seen_at is not None and now - cancel_seen_at > self.grace_seconds
                if term_sent_at is None and (grace_over or disk_full is not None):
                    platform.ask_to_stop(process)
                    term_sent_at = now
                if term_sent_at is not None and now - term_sent_at > self.term_seconds:
                    platform.kill_tree(process)

        exit_code = process.wait()
        reader.join(timeout=5)
        if persistence.spool.events:
            persistence.write([])  # a last try; what is still left stays spooled for a resume
        return self._finish(job_id, run, exit_code, done_event, error_event,
                            disk_full=job_log.disk_full or persistence.disk_full)

    def _finish(self, job_id: int, run: RunDir, exit_code: int, done_event: dict[str, Any] | None,
                error_event: dict[str, Any] | None, *, disk_full: str | None) -> JobState:
        status: JobState
        if done_event is not None and exit_code == 0 and disk_full is None:
            status = "cancelled" if done_event.get("status") == "cancelled" else "completed"
            error = "Cancelled by the user" if status == "cancelled" else None
            self._record_end(job_id, status, run, error=error, exit_code=exit_code)
        elif run.stop.exists() and error_event is None and disk_full is None:
            status = "cancelled"
            self._record_end(job_id, status, run, error="Cancelled by the user", exit_code=exit_code)
        else:
            status = "failed"
            if error_event is not None:
                message = error_event.get("message") or "the worker reported an error"
                traceback = error_event.get("traceback")
            else:
                message = disk_full or f"The training worker exited unexpectedly ({describe_exit(exit_code)})"
                traceback = log_tail(run.log)
            self._record_end(job_id, status, run, error=message, traceback=traceback, exit_code=exit_code)
        run.stop.unlink(missing_ok=True)
        return status

    def _record_end(self, job_id: int, status: JobState, run: RunDir, **fields: Any) -> None:
        """The final state into the job row. On a full database disk even that can fail: the row stays
        ``running`` until start-up reconciles it, and the reason goes to the log and worker.log."""
        try:
            job_store.finish_job(self.store, job_id, status, **fields)
        except Exception as exc:
            if not is_disk_full(exc):
                raise
            note = f"job {job_id} {status} ({fields.get('error')}); {disk_full_message(self.store.db_file)}"
            log.error("could not record the end of %s", note)
            _JobLog(run.log, {}).append(f"could not record the end of {note}\n")

    def _flush(self, job_id: int, persistence: _Persistence, pending: list[dict[str, Any]], job_log: _JobLog) -> None:
        persistence.write(pending)
        job_log.append_events(pending)
        for listener in self.listeners:
            call_safely(listener, "on_events", job_id, pending)
        if self.on_event:
            for event in pending:
                try:
                    self.on_event(job_id, event)
                except Exception:
                    log.exception("event callback failed")


def describe_exit(code: int | None) -> str:
    if code is None:
        return "no exit status"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " — killed, possibly out of memory" if platform.killed_by_kill_signal(code) else ""
        return f"{name}{hint}"
    return f"exit status {code}"


def _read_events(stream: IO[str], events: queue.Queue[dict[str, Any] | None], stray: _StrayOutput) -> None:
    """Read stdout to its end: events into the bounded queue (a worker far ahead of the runner waits
    on its pipe), other lines to worker.log through ``stray``. A line is read ``MAX_LINE_CHARS`` at a
    time, so no output, however long or fast, is held in memory whole."""
    try:
        while line := stream.readline(MAX_LINE_CHARS):
            line = line.strip()
            if not line:
                continue
            try:
                event = decode_event(line)
            except ProtocolError:
                if stray.add(line):
                    events.put(_flood_warning())
                continue
            stray.flush()  # lines printed before this event reach the log before it
            events.put(event)
    finally:
        stray.close()
        events.put(None)
