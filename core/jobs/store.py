"""Job rows: create, query and move between states.

States: pending → queued → running → completed | failed | cancelled | interrupted.
``interrupted`` means the supervising process vanished while the job ran (app killed, power cut);
``failed`` means the worker itself died or reported an error.
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import delete, func, or_, select, update

from core import paths
from core.config import JobConfig, config_from_dict
from core.db.engine import Store
from core.db.models import Checkpoint, Project, TrainingJob, TrainingMetric, User, utcnow
from core.events import TEST_METRICS_KIND
from core.jobs import ACTIVE_STATES, FINAL_STATES, NOT_STARTED_STATES, JobState
from core.platform import process_alive
from core.rundir import CheckpointKind, RunDir


class JobError(ValueError):
    pass


def project_id_for(store: Store, name: str) -> int:
    """The project with this name, created if missing."""
    with store.write() as session:
        project = session.scalars(select(Project).where(Project.name == name)).first()
        if project is None:
            user_id = session.scalars(select(User.id).order_by(User.id)).first()
            project = Project(user_id=user_id, name=name)
            session.add(project)
            session.flush()
        return project.id


def create_job(store: Store, config: JobConfig, *, status: JobState = "queued", project_id: int | None = None,
               dataset_id: int | None = None) -> int:
    """Insert a job row for ``config`` (validated) and create its run directory."""
    pid = project_id if project_id is not None else project_id_for(store, config.project)
    with store.write() as session:
        user_id = session.scalars(select(User.id).order_by(User.id)).first()
        job = TrainingJob(
            project_id=pid,
            user_id=user_id,
            name=config.display_name(),
            framework=config.framework,
            model_name=config.model,
            task_type=config.task,
            dataset_path=config.dataset,
            dataset_format=config.dataset_format,
            dataset_id=dataset_id,
            epochs=config.epochs,
            batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            status=status,
            config_yaml=config.to_yaml(),
            created_at=utcnow(),
            queued_at=utcnow() if status == "queued" else None,
        )
        session.add(job)
        session.flush()
        job_id = job.id
        run_dir = paths.job_dir(job_id)
        job.output_dir = str(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return job_id


def job_config(job: TrainingJob) -> JobConfig:
    import yaml

    return config_from_dict(yaml.safe_load(job.config_yaml or "{}"), source=f"job {job.id}")


def get_job(store: Store, job_id: int) -> TrainingJob:
    with store.read() as session:
        job = session.get(TrainingJob, job_id)
        if job is None:
            raise JobError(f"no job with id {job_id}")
        session.expunge(job)
        return job


def list_jobs(store: Store, project_id: int | None = None) -> list[TrainingJob]:
    with store.read() as session:
        query = select(TrainingJob).order_by(TrainingJob.id.desc())
        if project_id is not None:
            query = query.where(TrainingJob.project_id == project_id)
        jobs = list(session.scalars(query))
        for job in jobs:
            session.expunge(job)
        return jobs


def update_job(store: Store, job_id: int, **values: Any) -> None:
    with store.write() as session:
        session.execute(update(TrainingJob).where(TrainingJob.id == job_id).values(**values))


def next_queued_job(store: Store) -> int | None:
    with store.read() as session:
        return session.scalars(
            select(TrainingJob.id).where(TrainingJob.status == "queued").order_by(TrainingJob.queued_at, TrainingJob.id)
        ).first()


def claim_job(store: Store, job_id: int) -> bool:
    """Atomically move a queued job to running for this process. False if someone else took it.

    One conditional UPDATE (``WHERE status = 'queued'``) in a ``BEGIN IMMEDIATE`` transaction: SQLite
    lets one writer at a time in, so of two queues or CLIs that both saw the job queued, the second
    updates no row. Nothing else may read-then-write a job's status to start it.
    """
    me = psutil.Process(os.getpid())
    with store.write() as session:
        result = session.execute(
            update(TrainingJob)
            .where(TrainingJob.id == job_id, TrainingJob.status == "queued")
            .values(
                status="running",
                started_at=utcnow(),
                completed_at=None,
                error_message=None,
                error_traceback=None,
                exit_code=None,
                runner_pid=me.pid,
                runner_started=me.create_time(),
                cancel_requested=False,
            )
        )
        return bool(getattr(result, "rowcount", 0))


def finish_job(store: Store, job_id: int, status: JobState, *, error: str | None = None, traceback: str | None = None,
               exit_code: int | None = None) -> None:
    assert status in FINAL_STATES, status
    update_job(
        store,
        job_id,
        status=status,
        completed_at=utcnow(),
        error_message=error,
        error_traceback=traceback,
        exit_code=exit_code,
        worker_pid=None,
        resume_requested=False,
    )


def request_cancel(store: Store, job_id: int) -> str:
    """Ask a job to stop. Queued jobs are cancelled at once; running ones get a stop file + flag."""
    job = get_job(store, job_id)
    if job.status in NOT_STARTED_STATES:
        finish_job(store, job_id, "cancelled", error="Cancelled before it started")
        return "cancelled"
    if job.status != "running":
        raise JobError(f"job {job_id} is {job.status}; only queued or running jobs can be cancelled")
    update_job(store, job_id, cancel_requested=True)
    stop_file_for(job_id).touch()
    return "stopping"


def stop_file_for(job_id: int) -> Path:
    run = RunDir.for_job(job_id)
    run.root.mkdir(parents=True, exist_ok=True)
    return run.stop


def requeue_for_resume(store: Store, job_id: int, *, extra_epochs: int = 0) -> None:
    """Queue a stopped job again; its worker resumes from last.pt. ``extra_epochs`` extends the run."""
    job = get_job(store, job_id)
    if job.status in ACTIVE_STATES:
        raise JobError(f"job {job_id} is {job.status}; it cannot be resumed now")
    last = latest_checkpoint(store, job_id, "last")
    if last is None or not Path(last.path).is_file():
        raise JobError(f"job {job_id} has no last.pt checkpoint to resume from")
    if job.status == "completed" and extra_epochs <= 0:
        raise JobError(f"job {job_id} completed all its epochs; extend it by N epochs instead of resuming")
    config = job_config(job)
    values: dict[str, Any] = {"status": "queued", "queued_at": utcnow(), "resume_requested": True,
                              "completed_at": None, "error_message": None, "error_traceback": None}
    if extra_epochs:
        config = config.model_copy(update={"epochs": config.epochs + extra_epochs})
        values.update(epochs=config.epochs, config_yaml=config.to_yaml())
    stop_file_for(job_id).unlink(missing_ok=True)
    update_job(store, job_id, **values)


def latest_checkpoint(store: Store, job_id: int, kind: CheckpointKind) -> Checkpoint | None:
    with store.read() as session:
        row = session.scalars(
            select(Checkpoint).where(Checkpoint.job_id == job_id, Checkpoint.kind == kind).order_by(Checkpoint.id.desc())
        ).first()
        if row is not None:
            session.expunge(row)
        return row


def checkpoints(store: Store, job_id: int) -> list[Checkpoint]:
    with store.read() as session:
        rows = list(session.scalars(select(Checkpoint).where(Checkpoint.job_id == job_id).order_by(Checkpoint.kind)))
        for row in rows:
            session.expunge(row)
        return rows


def original_columns(kind: str, values: dict[str, float]) -> tuple[float | None, float | None, float | None]:
    """The original schema's ``loss``, ``accuracy`` and ``learning_rate`` of a metrics row: train loss,
    the step's train accuracy or the epoch's val accuracy, and the learning rate (short names too)."""
    loss = values.get("train/loss", values.get("loss"))
    if kind == "step":
        accuracy = values.get("train/accuracy")
    else:
        accuracy = values.get("val/accuracy", values.get("accuracy"))
    return loss, accuracy, values.get("lr", values.get("learning_rate"))


def metric_rows(store: Store, job_id: int, kind: str | None = None) -> list[TrainingMetric]:
    """Rows of ``training_metrics``; step records (``core.jobs.series``) come first as detached rows.
    For scripts and tests: charts and exports read the series through ``core.services.metrics``."""
    with store.read() as session:
        query = select(TrainingMetric).where(TrainingMetric.job_id == job_id)
        if kind:
            query = query.where(TrainingMetric.kind == kind)
        rows = list(session.scalars(query.order_by(TrainingMetric.id)))
        for row in rows:
            session.expunge(row)
        from core.jobs import series  # numpy: not imported by start-up paths that never read steps

        steps = [_step_row(job_id, r) for r in series.iter_records(session.connection(), job_id)] \
            if kind in (None, "", "step") else []
        return steps + rows


def _step_row(job_id: int, record: Any) -> TrainingMetric:
    loss, accuracy, learning_rate = original_columns("step", record.values)
    return TrainingMetric(job_id=job_id, epoch=record.epoch, step=record.step, kind="step", loss=loss,
                          accuracy=accuracy, learning_rate=learning_rate, extra_metrics=json.dumps(record.values))


def metric_values(row: TrainingMetric) -> dict[str, float]:
    """All named values of one metric row (the JSON holds every value, the original columns too)."""
    values: dict[str, float] = json.loads(row.extra_metrics) if row.extra_metrics else {}
    return values


def drop_metrics_from_epoch(store: Store, job_id: int, epoch: int) -> None:
    """Resuming re-runs ``epoch``: its partial rows go so no epoch appears twice. The test-split row
    goes too: the resumed run may pick another best checkpoint, and evaluates the test split again."""
    with store.write() as session:
        session.execute(delete(TrainingMetric).where(
            TrainingMetric.job_id == job_id,
            or_(TrainingMetric.epoch >= epoch, TrainingMetric.kind == TEST_METRICS_KIND)))
        from core.jobs import series

        series.drop_from_epoch(session.connection(), job_id, epoch)


def metric_count(store: Store, job_id: int) -> int:
    from core.jobs import series

    with store.read() as session:
        rows = int(session.scalar(select(func.count(TrainingMetric.id)).where(TrainingMetric.job_id == job_id)) or 0)
        return rows + series.extent(session.connection(), job_id).records


def _runner_alive(pid: int | None, started: float | None) -> bool:
    return process_alive(pid, started)  # a recycled PID has a different start time


def is_job_worker(pid: int | None, run_dir: str | None) -> bool:
    """Whether ``pid`` is still this job's worker (``core.jobs.spawn.is_worker_of``: a plain worker
    names the run directory, a standby works in it).

    After a reboot the recorded PID may belong to any process; only a worker of this very job is
    ever killed.
    """
    from core.jobs.spawn import is_worker_of

    if not pid or not run_dir:
        return False
    try:
        process = psutil.Process(pid)
        command, cwd = process.cmdline(), process.cwd()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return is_worker_of(command, cwd, run_dir)


def _kill_leftover_worker(worker_pid: int | None, run_dir: str | None) -> None:
    """The worker should have died with its runner; make sure, if it is really ours."""
    if not is_job_worker(worker_pid, run_dir):
        return
    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
        psutil.Process(worker_pid).kill()


def reconcile_orphaned_jobs(store: Store) -> list[int]:
    """On start-up: jobs marked running whose supervising process is gone become ``interrupted``."""
    orphaned: list[int] = []
    with store.read() as session:
        rows = session.execute(
            select(TrainingJob.id, TrainingJob.runner_pid, TrainingJob.runner_started, TrainingJob.worker_pid,
                   TrainingJob.output_dir)
            .where(TrainingJob.status == "running")
        ).all()
    for job_id, runner_pid, runner_started, worker_pid, output_dir in rows:
        if _runner_alive(runner_pid, runner_started):
            continue
        _kill_leftover_worker(worker_pid, output_dir)
        finish_job(store, job_id, "interrupted", error="The app stopped while this job was running; resume it to continue")
        orphaned.append(job_id)
    return orphaned


def format_duration(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return ""
    seconds = int(((end or utcnow()) - start).total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {(seconds % 3600) // 60} min"
