"""The job runner's MLflow listener, and the replay of metrics from SQLite.

Design: SQLite is the source of truth, MLflow a best-effort copy.
The runner has already committed every metric to ``training_metrics`` when it calls
:meth:`MlflowListener.on_events`, so the listener does not copy values into a queue that could
overflow: it only marks the job "dirty" and wakes its sender thread. That thread reads the rows after
``training_jobs.mlflow_synced_metric_id`` (the highest row id MLflow confirmed) and sends them with
``log_batch``; step records (``core.jobs.series``) follow their own cursor,
``training_jobs.mlflow_synced_step_seq``, every ``STEP_LOG_EVERY``-th step, 1,000 values a call.
The same code replays a gap later (:func:`resend_metrics`), so a metric sent live and
one re-sent after an outage land under the same key and step.

When the tracking store is down or locked, the sender logs one warning per job, backs off, and
tries again; the runner never waits on it. A run whose job ended while MLflow was unreachable, or
whose runner was killed, keeps a small marker file; :func:`terminate_orphaned_runs` (called at
start-up) finishes those: it sends what is missing and ends the run FINISHED / FAILED / KILLED.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from core import paths
from core.db.models import Artifact, Checkpoint, TrainingJob, TrainingMetric
from core.jobs import series
from core.jobs.listeners import stop_background_thread
from core.rundir import ARGS_FILE, CHECKPOINT_FILES, RunDir
from core.tracking.mlflow_logger import (
    FINAL_JOB_STATUSES,
    MetricPoint,
    MlflowTracker,
    metric_key,
    metric_values_from_row,
    params_from_config_yaml,
)

if TYPE_CHECKING:
    from core.db.engine import Store
    from core.settings import Settings

log = logging.getLogger(__name__)

ROWS_PER_READ = 500  # metric rows per SQLite read; each row holds several values
STEP_RECORDS_PER_READ = 5000  # step records per read of the series (sent in log_batch calls of 1,000 values)
# Per-step metrics reach MLflow at every STEP_LOG_EVERY-th global step (Lightning's log_every_n_steps
# idea); epoch metrics always. SQLite keeps every step for the app's own charts. Why: MLflow's
# SQLite store costs ~0.2 ms of CPU per value, and 20 epochs × 200 steps × 2 values would cost the
# runner process seconds of CPU on a 2-core machine that is training at the same time.
STEP_LOG_EVERY = 10
FLUSH_INTERVAL_S = 1.0  # how often the sender sends new rows of a running job
RETRY_MIN_S = 5.0
RETRY_MAX_S = 300.0
ARGS_FILE_NAMES = (ARGS_FILE, "config.yaml")  # ours, then a config a user dropped in the run dir
_ARTIFACT_SEARCH_DEPTH = 3


# -- markers: "this job still owes MLflow something" -------------------------------------------------
def _markers_dir() -> Path:
    return paths.mlflow_dir() / "open_runs"


def _marker_path(job_id: int) -> Path:
    return _markers_dir() / f"job_{job_id}.json"


def _write_marker(job_id: int, run_id: str | None, uri: str) -> None:
    folder = _markers_dir()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".job_{job_id}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"job_id": job_id, "run_id": run_id, "uri": uri}), encoding="utf-8")
    os.replace(tmp, _marker_path(job_id))


def _remove_marker(job_id: int) -> None:
    try:
        _marker_path(job_id).unlink()
    except FileNotFoundError:
        pass


def open_run_markers() -> list[int]:
    """Job ids whose MLflow run may still be open (cheap: one directory listing, no mlflow)."""
    folder = _markers_dir()
    if not folder.is_dir():
        return []
    ids: list[int] = []
    for entry in folder.glob("job_*.json"):
        try:
            ids.append(int(entry.stem.removeprefix("job_")))
        except ValueError:
            continue
    return sorted(ids)


# -- the shared sync path -----------------------------------------------------------------------------
@dataclass
class JobSyncResult:
    job_id: int
    run_id: str | None = None
    metric_rows_sent: int = 0
    metrics_sent: int = 0
    artifacts: list[str] = field(default_factory=list)
    run_status: str | None = None  # set when the run was terminated by this call


def _to_ms(moment: datetime | None) -> int:
    if moment is None:
        return int(time.time() * 1000)
    return int(moment.replace(tzinfo=UTC).timestamp() * 1000)


def _ensure_run(tracker: MlflowTracker, store: Store, job: TrainingJob, *, reopen: bool) -> str:
    """The job's run id: the one recorded (re-opened when resuming), or a new run with its params."""
    run_id = job.mlflow_run_id
    if run_id and tracker.run_exists(run_id):
        if reopen:
            if tracker.run_status(run_id) != "RUNNING":
                tracker.reopen(run_id)
            _rewind_cursor_after_resume(store, job)
        return run_id
    run_id = tracker.create_run(job.project_id, job.id, tags={"vision_platform.framework": job.framework})
    params = params_from_config_yaml(job.config_yaml)
    if not params:  # no validated config (older job rows): fall back to the original schema's columns
        params = {
            key: str(value)
            for key, value in {
                "framework": job.framework,
                "model": job.model_name,
                "task": job.task_type,
                "dataset": job.dataset_path,
                "epochs": job.epochs,
                "batch_size": job.batch_size,
                "learning_rate": job.learning_rate,
            }.items()
            if value is not None
        }
    tracker.log_params(run_id, params)
    with store.write() as session:
        # A new run starts from the first metric row: reset the cursor together with the run id.
        session.execute(
            update(TrainingJob)
            .where(TrainingJob.id == job.id)
            .values(mlflow_run_id=run_id, mlflow_synced_metric_id=None, mlflow_synced_step_seq=None)
        )
    job.mlflow_run_id = run_id
    job.mlflow_synced_metric_id = None
    job.mlflow_synced_step_seq = None
    return run_id


def _rewind_cursor_after_resume(store: Store, job: TrainingJob) -> None:
    """Resuming deletes the metric rows of the epochs it re-runs; SQLite may then hand their ids
    to the new rows (rowid = max + 1). Pull the cursor back to the last surviving row so the new
    rows are not mistaken for rows already sent."""
    from sqlalchemy import func

    _rewind_step_cursor(store, job)
    if job.mlflow_synced_metric_id is None:
        return
    with store.read() as session:
        last_kept = session.scalar(select(func.max(TrainingMetric.id)).where(TrainingMetric.job_id == job.id)) or 0
    if last_kept < job.mlflow_synced_metric_id:
        with store.write() as session:
            session.execute(
                update(TrainingJob).where(TrainingJob.id == job.id).values(mlflow_synced_metric_id=last_kept)
            )
        job.mlflow_synced_metric_id = last_kept


def _rewind_step_cursor(store: Store, job: TrainingJob) -> None:
    """The same for step records: a resume removed the records of the epochs it re-runs."""
    if job.mlflow_synced_step_seq is None:
        return
    with store.read() as session:
        last_kept = series.extent(session.connection(), job.id).records - 1
    if last_kept < job.mlflow_synced_step_seq:
        with store.write() as session:
            session.execute(update(TrainingJob).where(TrainingJob.id == job.id)
                            .values(mlflow_synced_step_seq=last_kept if last_kept >= 0 else None))
        job.mlflow_synced_step_seq = last_kept if last_kept >= 0 else None


def _send_step_records(tracker: MlflowTracker, store: Store, job_id: int, run_id: str, after_seq: int,
                       step_every: int = STEP_LOG_EVERY) -> tuple[int, int]:
    """Send the step records (``core.jobs.series``) after ``after_seq``: every ``step_every``-th step,
    ``log_batch`` with up to 1,000 values a call; returns (records read, values sent)."""
    records_read, values_sent, cursor = 0, 0, after_seq
    while True:
        with store.read() as session:
            records = series.records_after(session.connection(), job_id, cursor, STEP_RECORDS_PER_READ)
        if not records:
            return records_read, values_sent
        points = [MetricPoint(metric_key(name, "step"), value, record.step, int(record.time * 1000))
                  for record in records if step_every <= 1 or record.step % step_every == 0
                  for name, value in record.values.items()]
        if points:
            tracker.log_metrics(run_id, points)
        cursor = records[-1].seq
        with store.write() as session:
            session.execute(update(TrainingJob).where(TrainingJob.id == job_id).values(mlflow_synced_step_seq=cursor))
        records_read += len(records)
        values_sent += len(points)


def _load_job(store: Store, job_id: int) -> TrainingJob | None:
    with store.read() as session:
        job = session.get(TrainingJob, job_id)
        if job is not None:
            session.expunge(job)  # the read session rolls back on exit, which would expire it
        return job


def _send_metric_rows(
    tracker: MlflowTracker,
    store: Store,
    job_id: int,
    run_id: str,
    after_id: int,
    max_rows: int | None = None,
    step_every: int = STEP_LOG_EVERY,
) -> tuple[int, int, int]:
    """Send rows with id > after_id; returns (new cursor, rows sent, metric values sent)."""
    cursor, rows_sent, values_sent = after_id, 0, 0
    while max_rows is None or rows_sent < max_rows:
        limit = ROWS_PER_READ if max_rows is None else min(ROWS_PER_READ, max_rows - rows_sent)
        with store.read() as session:
            rows = session.execute(
                select(
                    TrainingMetric.id,
                    TrainingMetric.kind,
                    TrainingMetric.epoch,
                    TrainingMetric.step,
                    TrainingMetric.loss,
                    TrainingMetric.accuracy,
                    TrainingMetric.learning_rate,
                    TrainingMetric.extra_metrics,
                    TrainingMetric.created_at,
                )
                .where(TrainingMetric.job_id == job_id, TrainingMetric.id > cursor)
                .order_by(TrainingMetric.id)
                .limit(limit)
            ).all()
        if not rows:
            break
        points: list[MetricPoint] = []
        for row in rows:
            if row.kind == "step" and step_every > 1 and (row.step is None or row.step % step_every != 0):
                continue
            values = metric_values_from_row(row.loss, row.accuracy, row.learning_rate, row.extra_metrics)
            # Epoch metrics are plotted against the epoch; step metrics against the global step.
            step = row.step if row.kind == "step" and row.step is not None else row.epoch
            stamp = _to_ms(row.created_at)
            points.extend(MetricPoint(metric_key(name, row.kind), value, int(step), stamp) for name, value in values.items())
        if points:
            tracker.log_metrics(run_id, points)
        cursor = rows[-1].id
        # Record progress after each confirmed batch, so an outage mid-replay resends only the rest.
        with store.write() as session:
            session.execute(update(TrainingJob).where(TrainingJob.id == job_id).values(mlflow_synced_metric_id=cursor))
        rows_sent += len(rows)
        values_sent += len(points)
    return cursor, rows_sent, values_sent


def _find_files(root: Path, names: Iterable[str]) -> list[Path]:
    wanted = set(names)
    found: list[Path] = []
    if not root.is_dir():
        return found
    for dirpath, dirnames, filenames in os.walk(root):
        depth = len(Path(dirpath).relative_to(root).parts)
        if depth >= _ARTIFACT_SEARCH_DEPTH:
            dirnames[:] = []
        dirnames.sort()
        for name in sorted(filenames):
            if name in wanted:
                found.append(Path(dirpath) / name)
    return found


def collect_artifacts(store: Store, job: TrainingJob, extra: Iterable[tuple[str, str]] = ()) -> list[tuple[Path, str | None]]:
    """Files to log at job end: best checkpoint, the effective args, registered plots and results."""
    chosen: dict[Path, str | None] = {}

    def add(path: Path, folder: str | None) -> None:
        try:
            resolved = path.resolve()
        except OSError:
            return
        if resolved.is_file() and resolved not in chosen:
            chosen[resolved] = folder

    with store.read() as session:
        best_path = session.scalars(
            select(Checkpoint.path)
            .where(Checkpoint.job_id == job.id, Checkpoint.kind == "best")
            .order_by(Checkpoint.id.desc())
        ).first()
        registered = session.execute(select(Artifact.kind, Artifact.path).where(Artifact.job_id == job.id)).all()
    # The runner writes args.yaml (the effective config) into the job's run dir.
    output_dir = RunDir.of(job.output_dir, job.id).root
    if best_path:
        add(Path(best_path), "weights")
    else:
        for candidate in _find_files(output_dir, [CHECKPOINT_FILES["best"]])[:1]:
            add(candidate, "weights")
    for candidate in _find_files(output_dir, ARGS_FILE_NAMES)[:1]:
        add(candidate, None)
    for kind, path in [*registered, *extra]:
        add(Path(path), "plots" if kind in ("plot", "confusion_matrix") else str(kind or "files"))
    return list(chosen.items())


def sync_job(
    tracker: MlflowTracker,
    store: Store,
    job_id: int,
    *,
    final_status: str | None = None,
    run_id: str | None = None,
    extra_artifacts: Iterable[tuple[str, str]] = (),
    step_every: int = STEP_LOG_EVERY,
) -> JobSyncResult:
    """Bring the job's MLflow run up to date with SQLite; end it when ``final_status`` is given.

    Raises whatever MLflow raises when the store is unreachable: callers decide how to retry.
    """
    result = JobSyncResult(job_id)
    job = _load_job(store, job_id)
    if job is None:
        _remove_marker(job_id)
        return result
    if run_id is None or job.mlflow_run_id != run_id:
        run_id = _ensure_run(tracker, store, job, reopen=False)
    result.run_id = run_id
    step_records, step_values = _send_step_records(
        tracker, store, job_id, run_id, -1 if job.mlflow_synced_step_seq is None else job.mlflow_synced_step_seq,
        step_every=step_every)
    _, result.metric_rows_sent, result.metrics_sent = _send_metric_rows(
        tracker, store, job_id, run_id, job.mlflow_synced_metric_id or 0, step_every=step_every
    )
    result.metric_rows_sent += step_records
    result.metrics_sent += step_values
    if final_status is not None:
        if tracker.run_status(run_id) == "RUNNING":
            if not tracker.has_artifacts(run_id):
                result.artifacts = tracker.log_artifacts(run_id, collect_artifacts(store, job, extra_artifacts))
            result.run_status = tracker.terminate(run_id, final_status)
        _remove_marker(job_id)
    return result


# -- public replay helpers ----------------------------------------------------------------------------
def _tracker_for(store: Store, settings: Settings | None, tracker: MlflowTracker | None) -> MlflowTracker:
    if tracker is not None:
        return tracker
    if settings is None:
        from core.settings import Settings

        settings = Settings.load(store)
    return MlflowTracker(settings=settings)


def resend_metrics(
    store: Store, job_id: int, *, settings: Settings | None = None, tracker: MlflowTracker | None = None
) -> JobSyncResult:
    """Replay the job's metric rows MLflow has not confirmed (creating the run if it never was).

    A job in a final state also gets its artifacts and its terminal run status.
    """
    job = _load_job(store, job_id)
    if job is None:
        raise KeyError(f"no training job {job_id}")
    final = job.status if job.status in FINAL_JOB_STATUSES else None
    return sync_job(_tracker_for(store, settings, tracker), store, job_id, final_status=final)


def jobs_with_metric_gaps(store: Store) -> list[int]:
    """Finished jobs with metric rows after ``mlflow_synced_metric_id`` (SQL only, no mlflow import)."""
    from sqlalchemy import func

    with store.read() as session:
        last_row = (
            select(TrainingMetric.job_id, func.max(TrainingMetric.id).label("last_id"))
            .group_by(TrainingMetric.job_id)
            .subquery()
        )
        rows = session.execute(
            select(TrainingJob.id)
            .join(last_row, last_row.c.job_id == TrainingJob.id)
            .where(
                TrainingJob.status.in_(FINAL_JOB_STATUSES),
                func.coalesce(TrainingJob.mlflow_synced_metric_id, 0) < last_row.c.last_id,
            )
            .order_by(TrainingJob.id)
        ).all()
        step_gaps = session.connection().exec_driver_sql(
            "SELECT j.id FROM training_jobs j JOIN (SELECT job_id, max(seq0 + n) AS records FROM step_chunks"
            " GROUP BY job_id) c ON c.job_id = j.id WHERE j.status IN ({}) AND coalesce(j.mlflow_synced_step_seq, -1)"
            " < c.records - 1".format(",".join("?" * len(FINAL_JOB_STATUSES))), tuple(sorted(FINAL_JOB_STATUSES))).all()
    return sorted({row[0] for row in rows} | {row[0] for row in step_gaps})


def terminate_orphaned_runs(
    store: Store, *, settings: Settings | None = None, tracker: MlflowTracker | None = None
) -> dict[int, str]:
    """Finish the runs of jobs that ended while MLflow was away or whose runner died.

    Only jobs with an open-run marker and a final status are touched (a ``running`` job may belong
    to a live runner). Their missing metrics are sent and the run ends with the job's status mapped
    (completed → FINISHED, failed → FAILED, cancelled/interrupted → KILLED). Returns {job_id: status}.
    mlflow is not imported when there is nothing to do. Never raises: start-up must go on.
    """
    job_ids = open_run_markers()
    if not job_ids:
        return {}
    with store.read() as session:
        rows = session.execute(select(TrainingJob.id, TrainingJob.status).where(TrainingJob.id.in_(job_ids))).all()
    statuses = {row.id: row.status for row in rows}
    for job_id in job_ids:
        if job_id not in statuses:
            _remove_marker(job_id)  # the job was deleted
    todo = [job_id for job_id in job_ids if statuses.get(job_id) in FINAL_JOB_STATUSES]
    if not todo:
        return {}
    done: dict[int, str] = {}
    try:
        mlflow_tracker = _tracker_for(store, settings, tracker)
        for job_id in todo:
            result = sync_job(mlflow_tracker, store, job_id, final_status=statuses[job_id])
            if result.run_status:
                done[job_id] = result.run_status
    except Exception as exc:  # an unreachable store must not stop start-up; markers stay for next time
        log.warning("could not finish open MLflow runs (%s); will try again at next start", exc)
    return done


# -- the listener -----------------------------------------------------------------------------------
@dataclass
class _JobState:
    job_id: int
    started: bool = False  # run created / reopened by the sender
    run_id: str | None = None
    start_requested: bool = False
    dirty: bool = False
    final_status: str | None = None
    artifacts: list[tuple[str, str]] = field(default_factory=list)
    failures: int = 0
    next_try: float = 0.0
    warned: bool = False


class MlflowListener:
    """``core.jobs.listeners.JobListener`` that mirrors jobs into MLflow from a background thread."""

    work_name = "MLflow tracking"  # what close() finishes, as the CLI names it

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        tracker: MlflowTracker | None = None,
        flush_interval: float = FLUSH_INTERVAL_S,
        step_every: int = STEP_LOG_EVERY,
    ) -> None:
        self.store = store
        self.step_every = max(1, step_every)
        self.settings = settings
        self.enabled = bool(getattr(settings, "tracking_enabled", True))
        self._tracker = tracker
        self._uri = tracker.uri if tracker is not None else None
        self.flush_interval = flush_interval
        self._jobs: dict[int, _JobState] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    # JobListener --------------------------------------------------------------------------------
    def on_job_start(self, job_id: int) -> None:
        if not self.enabled:
            return
        # Marker first: if this process dies from here on, start-up knows the run may be open.
        try:
            _write_marker(job_id, None, self.uri)
        except OSError as exc:
            log.warning("cannot write MLflow open-run marker for job %s: %s", job_id, exc)
        with self._lock:
            state = _JobState(job_id, start_requested=True)
            self._jobs[job_id] = state
        self._ensure_thread()
        self._wake.set()

    def on_events(self, job_id: int, events: list[dict[str, Any]]) -> None:
        if not self.enabled:
            return
        has_metrics = False
        artifacts: list[tuple[str, str]] = []
        for event in events:
            kind = event.get("type")
            if kind == "metrics":
                has_metrics = True
            elif kind == "artifact" and event.get("path"):
                artifacts.append((str(event.get("kind") or "files"), str(event["path"])))
        if not has_metrics and not artifacts:
            return
        with self._lock:
            state = self._jobs.get(job_id)
            if state is None:  # events of a job started before this listener existed
                state = self._jobs[job_id] = _JobState(job_id, start_requested=True)
            state.dirty = state.dirty or has_metrics
            state.artifacts.extend(artifacts)
        # No wake-up: metrics go out on the flush interval, in batches, not per event.
        self._ensure_thread()

    def on_job_end(self, job_id: int, status: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            state = self._jobs.get(job_id)
            if state is None:
                state = self._jobs[job_id] = _JobState(job_id, start_requested=True)
            state.final_status = status
            state.next_try = 0.0  # the end is worth an immediate try even after a failure
        self._ensure_thread()
        self._wake.set()

    def close(self, timeout: float = 10.0) -> None:
        stop_background_thread(self._thread, self._stopping, self._wake, timeout,
                               "MLflow sender still busy after %.1f s; unsent metrics stay in SQLite")

    # helpers --------------------------------------------------------------------------------------
    @property
    def uri(self) -> str:
        if self._uri is None:
            from core.tracking.mlflow_logger import tracking_uri

            self._uri = tracking_uri(self.settings)
        return self._uri

    def pending_jobs(self) -> list[int]:
        with self._lock:
            return sorted(self._jobs)

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="mlflow-sender", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            stopping = self._stopping.is_set()
            self._work(ignore_backoff=stopping)
            if stopping:
                return

    def _work(self, *, ignore_backoff: bool) -> None:
        now = time.monotonic()
        with self._lock:
            due = [
                state
                for state in self._jobs.values()
                if ((state.start_requested and not state.started) or state.dirty or state.final_status)
                and (ignore_backoff or state.next_try <= now)
            ]
        for state in due:
            try:
                self._sync_state(state)
            except Exception as exc:
                self._record_failure(state, exc)
            else:
                if state.warned:
                    log.info("MLflow reachable again: job %s is up to date", state.job_id)
                state.failures, state.warned, state.next_try = 0, False, 0.0

    def _sync_state(self, state: _JobState) -> None:
        if self._tracker is None:
            self._tracker = MlflowTracker(self.uri)
        tracker = self._tracker
        with self._lock:
            final_status = state.final_status
            reopen = state.start_requested and not state.started
            state.dirty = False
            artifacts = list(state.artifacts)
        if reopen:
            job = _load_job(self.store, state.job_id)
            if job is None:  # deleted while queued
                with self._lock:
                    self._jobs.pop(state.job_id, None)
                _remove_marker(state.job_id)
                return
            state.run_id = _ensure_run(tracker, self.store, job, reopen=True)
            _write_marker(state.job_id, state.run_id, self.uri)
            state.started = True
        result = sync_job(
            tracker,
            self.store,
            state.job_id,
            final_status=final_status,
            run_id=state.run_id,
            extra_artifacts=artifacts,
            step_every=self.step_every,
        )
        state.run_id = result.run_id
        if final_status is not None:
            with self._lock:
                self._jobs.pop(state.job_id, None)
            log.info("MLflow run %s of job %s ended %s", result.run_id, state.job_id, result.run_status or "(already ended)")

    def _record_failure(self, state: _JobState, exc: Exception) -> None:
        with self._lock:
            state.dirty = True  # whatever was not confirmed is read again from SQLite next time
        state.failures += 1
        delay = min(RETRY_MAX_S, RETRY_MIN_S * 2 ** (state.failures - 1))
        state.next_try = time.monotonic() + delay
        self.last_error = f"{type(exc).__name__}: {exc}"
        if not state.warned:
            state.warned = True
            log.warning(
                "MLflow tracking store %s unavailable for job %s (%s); metrics stay in SQLite and are "
                "re-sent when it answers (next try in %.0f s)",
                self.uri,
                state.job_id,
                self.last_error[:300],
                delay,
            )
        else:
            log.debug("MLflow still unavailable for job %s: %s", state.job_id, self.last_error[:300])
