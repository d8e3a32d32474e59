"""Supervise one training worker process and persist what it reports.

The worker is the same executable with the ``worker`` sub-command (so it also works frozen). It
writes JSON-lines events on stdout (``core.events``); stderr goes to the run dir's log (``RunDir.log``).
A reader thread turns lines into events; the runner thread persists them in batches (one write
transaction per batch, never one per metric), forwards them to listeners and to ``on_event``, and
enforces cancellation: stop file → SIGTERM after ``grace_seconds`` → SIGKILL.
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

from core.db.engine import Store
from core.db.models import Artifact, Checkpoint, TrainingJob, utcnow
from core.events import ProtocolError, decode_event, describe_event
from core.jobs import JobState
from core.jobs import store as job_store
from core.jobs.listeners import JobListener, call_safely
from core.launch import child_env, subcommand
from core.rundir import RunDir

log = logging.getLogger(__name__)

EventCallback = Callable[[int, dict[str, Any]], None]
FLUSH_INTERVAL_S = 0.25
FLUSH_MAX_EVENTS = 2000
LOG_TAIL_LINES = 30


def worker_command(run_dir: Path, *, resume: bool) -> list[str]:
    """The command line that starts a worker for ``run_dir`` (frozen app or Python install)."""
    return subcommand("worker", "--run-dir", str(run_dir), *(["--resume"] if resume else []))


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


def _values_json(values: dict[str, float]) -> str:
    """JSON for a {metric name: float} dict, ~3x faster than json.dumps on the persistence hot path.

    Falls back to json.dumps for anything unusual (names needing escapes, NaN/inf, non-floats).
    """
    parts = []
    for key, value in values.items():
        if type(value) is not float or not _SIMPLE_KEY.match(key) or value != value or value in (_INF, -_INF):
            return json.dumps(values)
        parts.append(f'"{key}":{value!r}')
    return "{" + ",".join(parts) + "}"


_INF = float("inf")

_INSERT_METRIC_SQL = (
    "INSERT INTO training_metrics (job_id, epoch, step, kind, loss, accuracy, learning_rate, extra_metrics, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class _EventBatch:
    """Turns a batch of events into rows; one write transaction per batch."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id

    def persist(self, store: Store, events: list[dict[str, Any]]) -> None:
        metric_rows: list[tuple[Any, ...]] = []
        job_values: dict[str, Any] = {}
        checkpoints: list[dict[str, Any]] = []
        artifacts: list[dict[str, Any]] = []
        for event in events:
            kind = event["type"]
            if kind == "metrics":
                metric_rows.append(self._metric_row(event))
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
        if not (metric_rows or job_values or checkpoints or artifacts):
            return
        with store.write() as session:
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

    def _metric_row(self, event: dict[str, Any]) -> tuple[Any, ...]:
        values: dict[str, float] = event.get("values") or {}
        kind = event.get("kind", "epoch")
        loss = values.get("train/loss", values.get("loss"))
        if kind == "step":
            accuracy = values.get("train/accuracy")
        else:
            accuracy = values.get("val/accuracy", values.get("accuracy"))
        stamp = float(event.get("t") or time.time())
        created = f"{_timestamp(int(stamp))}.{int((stamp % 1) * 1e6):06d}"
        return (
            self.job_id,
            int(event.get("epoch") or 0),
            event.get("step"),
            kind,
            loss,
            accuracy,
            values.get("lr", values.get("learning_rate")),
            _values_json(values),
            created,
        )


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
        run.write_job_info({"job_id": job.id, "project_id": job.project_id, "resume": resume})
        return run

    # ------------------------------------------------------------------ main
    def run(self, job_id: int, *, claimed: bool = False) -> str:
        if not claimed and not job_store.claim_job(self.store, job_id):
            raise job_store.JobError(f"job {job_id} is not queued; it cannot be started")
        job = job_store.get_job(self.store, job_id)
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
                process = subprocess.Popen(
                    worker_command(run.root, resume=resume),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=log_handle,
                    env=child_env(),
                    cwd=str(run.root),
                    start_new_session=True,  # its own process group: stop kills its data loaders too
                    text=True,
                    encoding="utf-8",
                    errors="replace",
                    bufsize=1,
                )
            except OSError as exc:
                job_store.finish_job(self.store, job_id, "failed", error=f"could not start the worker: {exc}")
                self._notify_end(job_id, "failed")
                return "failed"
            job_store.update_job(self.store, job_id, worker_pid=process.pid)
            status = self._supervise(job_id, process, run)
        self._notify_end(job_id, status)
        return status

    def _notify_end(self, job_id: int, status: str) -> None:
        if self.on_event:
            self.on_event(job_id, {"type": "job_end", "status": status})
        for listener in self.listeners:
            call_safely(listener, "on_job_end", job_id, status)

    def _supervise(self, job_id: int, process: subprocess.Popen[str], run: RunDir) -> JobState:
        log_file = run.log
        events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        assert process.stdout is not None
        reader = threading.Thread(target=self._read_events, args=(process.stdout, events, log_file), daemon=True,
                                  name=f"job-{job_id}-reader")
        reader.start()
        batcher = _EventBatch(job_id)
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
                self._flush(job_id, batcher, pending, log_file)
                pending = []
                last_flush = now
            # Cancellation: the stop file is the request (written by `cancel`, the GUI, or this process).
            if process.poll() is None:
                if cancel_seen_at is None and stop_file.exists():
                    cancel_seen_at = now
                if cancel_seen_at is not None and term_sent_at is None and now - cancel_seen_at > self.grace_seconds:
                    self._signal(process, signal.SIGTERM)
                    term_sent_at = now
                if term_sent_at is not None and now - term_sent_at > self.term_seconds:
                    self._signal(process, signal.SIGKILL)

        exit_code = process.wait()
        reader.join(timeout=5)
        cancelled = stop_file.exists()
        status: JobState
        if done_event is not None and exit_code == 0:
            status = "cancelled" if done_event.get("status") == "cancelled" else "completed"
            job_store.finish_job(self.store, job_id, status, exit_code=exit_code,
                                 error="Cancelled by the user" if status == "cancelled" else None)
        elif cancelled and error_event is None:
            job_store.finish_job(self.store, job_id, "cancelled", exit_code=exit_code, error="Cancelled by the user")
            status = "cancelled"
        else:
            status = "failed"
            if error_event is not None:
                message = error_event.get("message") or "the worker reported an error"
                traceback = error_event.get("traceback")
            else:
                message = f"The training worker exited unexpectedly ({describe_exit(exit_code)})"
                traceback = log_tail(log_file)
            job_store.finish_job(self.store, job_id, "failed", error=message, traceback=traceback, exit_code=exit_code)
        stop_file.unlink(missing_ok=True)
        return status

    def _flush(self, job_id: int, batcher: _EventBatch, pending: list[dict[str, Any]], log_file: Path) -> None:
        try:
            batcher.persist(self.store, pending)
        except Exception:
            log.exception("could not persist %d events of job %d", len(pending), job_id)
        self._append_to_log(pending, log_file)
        for listener in self.listeners:
            call_safely(listener, "on_events", job_id, pending)
        if self.on_event:
            for event in pending:
                try:
                    self.on_event(job_id, event)
                except Exception:
                    log.exception("event callback failed")

    @staticmethod
    def _append_to_log(events: list[dict[str, Any]], log_file: Path) -> None:
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
            with open(log_file, "a", encoding="utf-8") as handle:
                handle.write("\n".join(lines) + "\n")

    @staticmethod
    def _read_events(stream: IO[str], events: queue.Queue[dict[str, Any] | None], log_file: Path) -> None:
        """Read stdout to its end; lines that are not events are kept in the log, not lost."""
        stray: list[str] = []
        try:
            for line in stream:
                line = line.strip()
                if not line:
                    continue
                try:
                    events.put(decode_event(line))
                except ProtocolError:
                    stray.append(line)
        finally:
            if stray:
                with open(log_file, "a", encoding="utf-8") as handle:
                    handle.write("\n".join(f"[stdout] {line}" for line in stray) + "\n")
            events.put(None)

    @staticmethod
    def _signal(process: subprocess.Popen[str], sig: int) -> None:
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                process.send_signal(sig)
            except ProcessLookupError:
                pass


def describe_exit(code: int | None) -> str:
    if code is None:
        return "no exit status"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " — killed, possibly out of memory" if -code == signal.SIGKILL else ""
        return f"{name}{hint}"
    return f"exit status {code}"
