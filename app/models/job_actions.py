"""What the Jobs page's actions do to the store and the disk (no Qt: they run in worker threads)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import paths


@dataclass(frozen=True)
class JobDetail:
    """What the detail tabs need beyond the table row."""

    id: int
    status: str
    output_dir: str
    error_message: str | None
    error_traceback: str | None
    mlflow_run_id: str | None
    task: str


def read_detail(store: Any, job_id: int) -> JobDetail:
    from core.jobs.store import get_job

    job = get_job(store, job_id)
    return JobDetail(job.id, job.status, job.output_dir or str(paths.job_dir(job.id)), job.error_message,
                     job.error_traceback, job.mlflow_run_id, job.task_type)


def folder_size(folder: Path) -> int:
    total = 0
    if folder.is_dir():
        for item in folder.rglob("*"):
            try:
                if item.is_file() and not item.is_symlink():
                    total += item.stat().st_size
            except OSError:
                continue
    return total


def owned_run_dir(output_dir: str | None) -> Path | None:
    """The job's run folder when it lies inside the app's runs folder: the only folder delete removes."""
    if not output_dir:
        return None
    folder = Path(output_dir).resolve()
    runs = paths.runs_dir().resolve()
    if folder == runs or not folder.is_relative_to(runs):
        return None
    return folder


def delete_jobs(store: Any, job_ids: list[int]) -> list[str]:
    """Delete the jobs' rows (metrics, checkpoints, artifacts, uploads follow by cascade) and run folders.

    Refuses running or queued jobs (cancel first). Returns what could not be removed, for the user.
    """
    from sqlalchemy import delete

    from core.db.models import TrainingJob
    from core.jobs.store import get_job

    problems: list[str] = []
    for job_id in job_ids:
        job = get_job(store, job_id)
        if job.status in ("running", "queued"):
            problems.append(f"job {job_id} is {job.status}: cancel it first")
            continue
        folder = owned_run_dir(job.output_dir)
        with store.write() as session:
            session.execute(delete(TrainingJob).where(TrainingJob.id == job_id))
        if folder is not None and folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
            if folder.exists():
                problems.append(f"{folder} could not be removed completely")
    return problems
