"""Jobs: list, show, queue, cancel, resume/extend, clone and delete — for the Jobs page and ``vision-platform job``.

What a caller gets back are plain frozen dataclasses (:class:`JobSummary`, :class:`JobDetail`,
:class:`MetricRecord`), never ORM rows: the GUI keeps them across threads and compares them, and
no SQLAlchemy session semantics (lazy loads, expiry) leak past this module. The state machine itself
(claiming, finishing, the STOP file) stays in ``core.jobs.store``; this module is the user's view of it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, or_, select

from core import paths
from core.config import ConfigError, JobConfig, config_from_dict
from core.db.models import Artifact, Checkpoint, TrainingJob
from core.jobs import ACTIVE_STATES
from core.jobs import store as job_store
from core.services import ServiceError, Store

LIST_HINT = "`vision-platform job list` shows the jobs"


# -- what callers see --------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobSummary:
    """One job as the jobs table and ``job list`` show it."""

    id: int
    name: str
    framework: str
    model: str
    task: str
    status: str
    epoch: int | None
    epochs: int | None
    step: int | None
    steps: int | None
    best_name: str | None
    best_value: float | None
    started_at: datetime | None
    completed_at: datetime | None
    output_dir: str
    error_message: str | None
    sync: str = ""

    @property
    def fraction(self) -> float | None:
        """Share of the run done, from the last progress event (None before the first one)."""
        if self.status == "completed":
            return 1.0
        if not self.epochs or not self.epoch:
            return None
        within = (self.step or 0) / self.steps if self.steps else 0.0
        within = min(max(within, 0.0), 1.0)
        return min(1.0, ((self.epoch - 1) + within) / self.epochs)

    def eta_seconds(self, now: datetime) -> float | None:
        fraction = self.fraction
        if self.status != "running" or self.started_at is None or not fraction or fraction <= 0.0:
            return None
        elapsed = (now - self.started_at).total_seconds()
        return elapsed / fraction * (1.0 - fraction)

    def duration_seconds(self, now: datetime) -> float | None:
        if self.started_at is None:
            return None
        end = self.completed_at or (now if self.status == "running" else None)
        if end is None:
            return None
        return (end - self.started_at).total_seconds()

    def as_json(self) -> dict[str, Any]:
        """The fields scripts read from ``job list --json`` (names kept from the old ``jobs --json``)."""
        return {"id": self.id, "name": self.name, "status": self.status, "epoch": self.epoch, "epochs": self.epochs,
                "best_metric": self.best_value, "best_metric_name": self.best_name, "framework": self.framework,
                "model": self.model, "task": self.task, "sync": self.sync, "run_dir": self.output_dir}


@dataclass(frozen=True)
class JobDetail:
    """Everything about one job except its metrics and checkpoints."""

    id: int
    name: str
    status: str
    framework: str
    model: str
    task: str
    project_id: int
    dataset_path: str
    output_dir: str
    epochs: int | None
    current_epoch: int | None
    best_metric_name: str | None
    best_metric_value: float | None
    created_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    error_message: str | None
    error_traceback: str | None
    mlflow_run_id: str | None
    config_yaml: str

    @property
    def duration(self) -> str:
        return job_store.format_duration(self.started_at, self.completed_at)

    def config(self) -> JobConfig:
        """The job's effective config, validated again (what Clone opens in the configurator). No I/O."""
        import yaml

        try:
            return config_from_dict(yaml.safe_load(self.config_yaml or "{}"), source=f"job {self.id}")
        except (ConfigError, yaml.YAMLError) as exc:
            raise ServiceError(f"job {self.id}'s configuration cannot be reused: {exc}") from None

    def as_json(self) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}


@dataclass(frozen=True)
class MetricRecord:
    """One metrics row: ``kind`` "step" or "epoch", and every named value it holds."""

    kind: str
    epoch: int | None
    step: int | None
    values: Mapping[str, float]


@dataclass(frozen=True)
class ArtifactInfo:
    """A file the run produced besides checkpoints (plot, confusion matrix, val_predictions.json)."""

    kind: str
    path: str
    exists: bool


@dataclass(frozen=True)
class DeletePreview:
    """What deleting a job removes, for the confirmation: its run folder (None: not the app's) and size."""

    job_id: int
    name: str
    run_dir: str | None
    size_bytes: int


# -- reading -----------------------------------------------------------------------------------------
def format_metric(name: str | None, value: float | None) -> str:
    """"accuracy 91.2 %", "loss 0.1234": ratios read as percentages, losses stay numbers."""
    if not name or value is None:
        return ""
    short = name.split("/", 1)[-1]
    if "loss" not in short and 0.0 <= value <= 1.0:
        return f"{short} {value * 100:.1f} %"
    return f"{short} {value:.4g}"


def sync_summary(states: list[str]) -> str:
    """One word for a job's checkpoints: synced, uploading, failed, local (or empty without any)."""
    if not states:
        return ""
    if all(s == "synced" for s in states):
        return "synced"
    if any(s == "failed" for s in states):
        return "upload failed"
    if any(s in ("pending", "uploading") for s in states):
        return "uploading"
    return "local"


def _checkpoint_states(store: Store, project_id: int | None) -> dict[int, list[str]]:
    states: dict[int, list[str]] = {}
    query = select(Checkpoint.job_id, Checkpoint.sync_state)
    if project_id is not None:
        query = query.where(Checkpoint.job_id.in_(select(TrainingJob.id).where(TrainingJob.project_id == project_id)))
    with store.read() as session:
        for job_id, state in session.execute(query):
            states.setdefault(job_id, []).append(state)
    return states


_SUMMARY_COLUMNS = (TrainingJob.id, TrainingJob.name, TrainingJob.framework, TrainingJob.model_name,
                    TrainingJob.task_type, TrainingJob.status, TrainingJob.current_epoch, TrainingJob.epochs,
                    TrainingJob.current_step, TrainingJob.steps_per_epoch, TrainingJob.best_metric_name,
                    TrainingJob.best_metric_value, TrainingJob.started_at, TrainingJob.completed_at,
                    TrainingJob.output_dir, TrainingJob.error_message)


def _summary(job: Any, states: list[str]) -> JobSummary:
    return JobSummary(
        id=job.id, name=job.name or f"Job {job.id}", framework=job.framework, model=job.model_name,
        task=job.task_type, status=job.status, epoch=job.current_epoch, epochs=job.epochs,
        step=job.current_step, steps=job.steps_per_epoch, best_name=job.best_metric_name,
        best_value=job.best_metric_value, started_at=job.started_at, completed_at=job.completed_at,
        output_dir=job.output_dir or "", error_message=job.error_message, sync=sync_summary(states),
    )


def list_jobs(store: Store, project_id: int | None = None) -> list[JobSummary]:
    """Jobs (of one project, or all), newest first, with their checkpoints' sync state.

    Plain column rows, no ORM objects: 10,000 jobs (a sweep) read in a few tens of milliseconds.
    """
    query = select(*_SUMMARY_COLUMNS).order_by(TrainingJob.id.desc())
    if project_id is not None:
        query = query.where(TrainingJob.project_id == project_id)
    with store.read() as session:
        jobs = session.execute(query).all()
    states = _checkpoint_states(store, project_id)
    return [_summary(job, states.get(job.id, [])) for job in jobs]


# -- the jobs table, page by page and change by change (10,000 jobs of a sweep) ----------------------
# The table's sortable columns and the SQL order of each (the job id breaks ties, so pages never overlap).
SORT_KEYS: dict[str, tuple[Any, ...]] = {
    "id": (TrainingJob.id,),
    "name": (TrainingJob.name,),
    "model": (TrainingJob.framework, TrainingJob.model_name),
    "status": (TrainingJob.status,),
    "epoch": (TrainingJob.current_epoch,),
    "best": (TrainingJob.best_metric_value,),
    "started": (TrainingJob.started_at,),
}
SQL_PARAMETERS_PER_QUERY = 500  # ids in one ``IN (…)``: far under every SQLite build's limit


@dataclass(frozen=True)
class JobOrder:
    """How the jobs table is sorted: a :data:`SORT_KEYS` key, descending or not (default: newest first)."""

    key: str = "id"
    descending: bool = True

    def __post_init__(self) -> None:
        if self.key not in SORT_KEYS:
            raise ServiceError(f"jobs cannot be sorted by {self.key!r}: use one of {', '.join(SORT_KEYS)}")

    def clauses(self) -> list[Any]:
        columns = [*SORT_KEYS[self.key], TrainingJob.id] if self.key != "id" else [TrainingJob.id]
        return [column.desc() if self.descending else column.asc() for column in columns]


@dataclass(frozen=True)
class JobChanges:
    """What changed in the jobs list since a table last looked (see :func:`job_changes`)."""

    rows: list[JobSummary]  # new and changed jobs (revision above the mark), jobs whose uploads moved
    counts: dict[str, int]  # jobs per status, from SQL (the status line; a check that nothing was missed)
    max_id: int  # the new mark for "new jobs"
    checkpoint_mark: datetime | None  # the newest checkpoint change seen
    revision: int  # the new mark for "changed jobs"
    ids: frozenset[int] | None = None  # every job id, only when the total changed (jobs were deleted)


def _summaries(store: Store, query: Any) -> list[JobSummary]:
    with store.read() as session:
        jobs = session.execute(query).all()
        states: dict[int, list[str]] = {}
        ids = [job.id for job in jobs]
        for start in range(0, len(ids), SQL_PARAMETERS_PER_QUERY):
            chunk = ids[start:start + SQL_PARAMETERS_PER_QUERY]
            for job_id, state in session.execute(select(Checkpoint.job_id, Checkpoint.sync_state)
                                                 .where(Checkpoint.job_id.in_(chunk))):
                states.setdefault(job_id, []).append(state)
    return [_summary(job, states.get(job.id, [])) for job in jobs]


def _in_project(query: Any, project_id: int | None) -> Any:
    return query if project_id is None else query.where(TrainingJob.project_id == project_id)


def list_jobs_page(store: Store, project_id: int | None, order: JobOrder, offset: int, limit: int,
                   max_id: int | None = None) -> list[JobSummary]:
    """``limit`` jobs from ``offset`` in ``order`` (only ids up to ``max_id``: jobs queued meanwhile
    come through :func:`job_changes`, not as a shifted page)."""
    query = _in_project(select(*_SUMMARY_COLUMNS), project_id)
    if max_id is not None:
        query = query.where(TrainingJob.id <= max_id)
    return _summaries(store, query.order_by(*order.clauses()).offset(offset).limit(limit))


def job_counts(store: Store, project_id: int | None = None) -> dict[str, int]:
    """Jobs per status, counted by SQLite (one indexed scan, not 10,000 rows in Python)."""
    query = _in_project(select(TrainingJob.status, func.count()), project_id).group_by(TrainingJob.status)
    with store.read() as session:
        return {status: int(count) for status, count in session.execute(query)}


@dataclass(frozen=True)
class ListMarks:
    """Where a table's read of the jobs list starts: later changes come from :func:`job_changes`."""

    max_id: int
    checkpoint_mark: datetime | None
    counts: dict[str, int]
    revision: int = 0


def list_marks(store: Store, project_id: int | None = None) -> ListMarks:
    """Taken before the rows are read: a job changed during the read comes again with the next changes."""
    revision = _revision_mark(store)
    with store.read() as session:
        max_id = session.execute(_in_project(select(func.max(TrainingJob.id)), project_id)).scalar()
    return ListMarks(int(max_id or 0), _checkpoint_mark(store), job_counts(store, project_id), revision)


def _checkpoint_mark(store: Store) -> datetime | None:
    with store.read() as session:
        return session.execute(select(func.max(Checkpoint.updated_at))).scalar()


def _revision_mark(store: Store) -> int:
    """The highest job revision (all projects: revisions count every job's changes)."""
    with store.read() as session:
        return int(session.execute(select(func.max(TrainingJob.revision))).scalar() or 0)


def job_changes(store: Store, project_id: int | None, *, after_id: int, after_revision: int,
                checkpoint_mark: datetime | None, known_total: int) -> JobChanges:
    """The rows a table that has seen jobs up to ``after_id`` and changes up to ``after_revision`` must
    update, read without touching the others.

    Every insert and update of a job row raises its ``revision`` above all others (triggers of
    migration 0005, whoever writes), so the rows are: jobs with a revision above ``after_revision``
    (new, progressing, finished, renamed), and jobs whose checkpoints changed after ``checkpoint_mark``
    (their sync column). With nothing running, nothing is read. When the total differs from
    ``known_total`` (jobs deleted), every id comes too, for the table to drop the missing ones.
    """
    revision = _revision_mark(store)  # before the rows: a change made meanwhile comes again next time
    mark = _checkpoint_mark(store)
    touched = select(Checkpoint.job_id).where(Checkpoint.updated_at > checkpoint_mark) if checkpoint_mark else None
    wanted = [TrainingJob.revision > after_revision]
    if touched is not None or checkpoint_mark is None and mark is not None:
        wanted.append(TrainingJob.id.in_(touched if touched is not None else select(Checkpoint.job_id)))
    rows = _summaries(store, _in_project(select(*_SUMMARY_COLUMNS), project_id).where(or_(*wanted))
                      .order_by(TrainingJob.id.desc()))
    counts = job_counts(store, project_id)
    ids = None
    if sum(counts.values()) != known_total + sum(1 for row in rows if row.id > after_id):
        with store.read() as session:
            ids = frozenset(session.scalars(_in_project(select(TrainingJob.id), project_id)))
    return JobChanges(rows, counts, max(after_id, *(row.id for row in rows), 0), mark, revision, ids)


def _job(store: Store, job_id: int) -> TrainingJob:
    try:
        return job_store.get_job(store, job_id)
    except job_store.JobError:
        raise ServiceError(f"no job with id {job_id}: {LIST_HINT}") from None


def job_detail(store: Store, job_id: int) -> JobDetail:
    job = _job(store, job_id)
    return JobDetail(
        id=job.id, name=job.name or f"Job {job.id}", status=job.status, framework=job.framework,
        model=job.model_name, task=job.task_type, project_id=job.project_id, dataset_path=job.dataset_path,
        output_dir=job.output_dir or str(paths.job_dir(job.id)), epochs=job.epochs, current_epoch=job.current_epoch,
        best_metric_name=job.best_metric_name, best_metric_value=job.best_metric_value, created_at=job.created_at,
        started_at=job.started_at, completed_at=job.completed_at, error_message=job.error_message,
        error_traceback=job.error_traceback, mlflow_run_id=job.mlflow_run_id, config_yaml=job.config_yaml or "",
    )


def metric_records(store: Store, job_id: int, kind: str | None = None) -> list[MetricRecord]:
    """The job's metrics in the order they were written (``kind`` "step" or "epoch" to pick one)."""
    return [MetricRecord(row.kind, row.epoch, row.step, job_store.metric_values(row))
            for row in job_store.metric_rows(store, job_id, kind=kind)]


def job_artifacts(store: Store, job_id: int) -> list[ArtifactInfo]:
    """The job's artifacts in the order they were reported, with whether each file exists (checks files)."""
    with store.read() as session:
        rows = session.execute(select(Artifact.kind, Artifact.path).where(Artifact.job_id == job_id)
                               .order_by(Artifact.id)).all()
    return [ArtifactInfo(kind, path, Path(path).is_file()) for kind, path in rows]


def job_config(store: Store, job_id: int) -> JobConfig:
    """The job's effective config, validated again (what Clone opens in the configurator)."""
    return job_detail(store, job_id).config()


# -- queue, stop, continue ---------------------------------------------------------------------------
def queue_job(store: Store, config: JobConfig, *, project_id: int | None = None,
              dataset_id: int | None = None) -> int:
    """Queue a job for ``config`` in ``project_id`` (its config then names that project), else in the
    project the config names (created if missing)."""
    if config.dataset.startswith(("r2://", "s3://")):  # the worker is offline: it could never fetch it
        raise ServiceError(f"{config.dataset}: an r2:// dataset is downloaded before its job is queued; "
                           "`vision-platform train job.yaml` does that, or add it on the Datasets page")
    if project_id is not None:
        from core.services.projects import get_project

        config = config.model_copy(update={"project": get_project(store, project_id).name})
    return job_store.create_job(store, config, project_id=project_id, dataset_id=dataset_id)


def clone_job(store: Store, job_id: int, *, name: str | None = None) -> int:
    """Queue a new job with the same configuration (``name`` replaces the copied name)."""
    source = _job(store, job_id)
    config = job_config(store, job_id)
    if name:
        config = config.model_copy(update={"name": name})
    return queue_job(store, config, project_id=source.project_id, dataset_id=source.dataset_id)


def cancel_job(store: Store, job_id: int) -> str:
    """Stop a job: "cancelled" at once when it was queued, "stopping" while the worker ends its batch."""
    _job(store, job_id)
    try:
        return job_store.request_cancel(store, job_id)
    except job_store.JobError as exc:
        raise ServiceError(str(exc)) from None


def wait_until_stopped(store: Store, job_id: int, timeout_s: float, poll_s: float = 0.5) -> str | None:
    """The job's status once it is no longer running, or None if it still runs after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = _job(store, job_id).status
        if status != "running":
            return status
        if time.monotonic() >= deadline:
            return None
        time.sleep(poll_s)


def resume_job(store: Store, job_id: int, *, extra_epochs: int = 0) -> None:
    """Queue a stopped job again from its last.pt; ``extra_epochs`` > 0 extends a finished one."""
    if extra_epochs < 0:
        raise ServiceError(f"extend job {job_id} by a positive number of epochs, not {extra_epochs}")
    _job(store, job_id)
    try:
        job_store.requeue_for_resume(store, job_id, extra_epochs=extra_epochs)
    except job_store.JobError as exc:
        raise ServiceError(str(exc)) from None


# -- delete ------------------------------------------------------------------------------------------
def owned_run_dir(output_dir: str | None) -> Path | None:
    """The job's run folder when it lies inside the app's runs folder: the only folder delete removes."""
    if not output_dir:
        return None
    folder = Path(output_dir).resolve()
    runs = paths.runs_dir().resolve()
    if folder == runs or not folder.is_relative_to(runs):
        return None
    return folder


def folder_size(folder: Path) -> int:
    """Bytes of the regular files below ``folder`` (links not followed). Walks the disk: not on the GUI thread."""
    total = 0
    if folder.is_dir():
        for item in folder.rglob("*"):
            try:
                if item.is_file() and not item.is_symlink():
                    total += item.stat().st_size
            except OSError:
                continue
    return total


def delete_preview(store: Store, job_ids: list[int]) -> list[DeletePreview]:
    """For each job: the run folder delete would remove and its size (walks the folders)."""
    previews = []
    for job_id in job_ids:
        job = _job(store, job_id)
        folder = owned_run_dir(job.output_dir)
        previews.append(DeletePreview(job.id, job.name or f"Job {job.id}", str(folder) if folder else None,
                                      folder_size(folder) if folder else 0))
    return previews


def delete_jobs(store: Store, job_ids: list[int]) -> list[str]:
    """Delete the jobs' rows (metrics, checkpoints, artifacts, uploads follow by cascade) and run folders.

    Refuses active jobs (cancel first) and unknown ids. Returns what could not be removed, for the user.
    """
    problems: list[str] = []
    for job_id in job_ids:
        try:
            job = _job(store, job_id)
        except ServiceError as exc:
            problems.append(str(exc))
            continue
        if job.status in ACTIVE_STATES:
            problems.append(f"job {job_id} is {job.status}: cancel it first (`vision-platform job cancel {job_id}`)")
            continue
        folder = owned_run_dir(job.output_dir)
        with store.write() as session:
            session.execute(delete(TrainingJob).where(TrainingJob.id == job_id))
        if folder is not None and folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
            if folder.exists():
                problems.append(f"{folder} could not be removed completely: close programs using it and delete it")
    return problems
