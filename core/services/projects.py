"""Projects: list, create, rename, delete — the sidebar and ``vision-platform project …`` both call these.

A project groups registered datasets and training jobs. The "Default" project always exists (jobs
without a project go there), so it can be neither renamed nor deleted. Deleting a project removes its
rows (dataset registrations, jobs, metrics) but never a file on disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from core.dataset_store import DatasetInfo, list_datasets
from core.db.models import Dataset, Project, TrainingJob, User
from core.jobs import ACTIVE_STATES
from core.services import ServiceError, Store

DEFAULT_PROJECT = "Default"
NAME_MAX = 256  # projects.name is String(256)


@dataclass(frozen=True)
class ProjectInfo:
    """One project with what it holds (a plain copy: safe to pass between threads)."""

    id: int
    name: str
    datasets: int
    jobs: int
    running: int  # queued or running jobs


@dataclass(frozen=True)
class ProjectOverview:
    """Everything the project sidebar shows, read in one go (in a worker thread)."""

    projects: list[ProjectInfo]
    datasets: list[DatasetInfo] = field(default_factory=list)

    @property
    def default_project_id(self) -> int:
        return next((p.id for p in self.projects if p.name == DEFAULT_PROJECT), self.projects[0].id)

    def datasets_of(self, project_id: int) -> list[DatasetInfo]:
        return [info for info in self.datasets if info.project_id == project_id]

    def project(self, project_id: int) -> ProjectInfo | None:
        return next((p for p in self.projects if p.id == project_id), None)


def _job_counts(session: Session, *where: ColumnElement[bool]) -> dict[int, int]:
    query = select(TrainingJob.project_id, func.count()).where(*where).group_by(TrainingJob.project_id)
    return {pid: count for pid, count in session.execute(query).all()}


def list_projects(store: Store) -> list[ProjectInfo]:
    """Every project, oldest first, with its dataset, job and active-job counts."""
    with store.read() as session:
        rows = session.execute(select(Project.id, Project.name).order_by(Project.id)).all()
        datasets = dict(session.execute(select(Dataset.project_id, func.count()).group_by(Dataset.project_id)).all())
        jobs = _job_counts(session)
        running = _job_counts(session, TrainingJob.status.in_(ACTIVE_STATES))
    return [ProjectInfo(pid, name, datasets.get(pid, 0), jobs.get(pid, 0), running.get(pid, 0)) for pid, name in rows]


def project_overview(store: Store) -> ProjectOverview:
    return ProjectOverview(list_projects(store), list_datasets(store))


def get_project(store: Store, project_id: int) -> ProjectInfo:
    """The project with this id; ServiceError naming the id when there is none."""
    found = next((p for p in list_projects(store) if p.id == project_id), None)
    if found is None:
        raise ServiceError(f"There is no project with id {project_id} (`vision-platform project list` shows them).")
    return found


def find_project(store: Store, name_or_id: str) -> ProjectInfo:
    """A project by its exact name, or by its id when the text is a number (for the CLI)."""
    projects = list_projects(store)
    found = next((p for p in projects if p.name == name_or_id.strip()), None)
    if found is None and name_or_id.strip().isdigit():
        found = next((p for p in projects if p.id == int(name_or_id)), None)
    if found is None:
        raise ServiceError(f"There is no project “{name_or_id}” (`vision-platform project list` shows them).")
    return found


def _check_name(store: Store, name: str, exclude: int | None = None) -> str:
    name = name.strip()
    if not name:
        raise ServiceError("A project needs a name.")
    if len(name) > NAME_MAX:
        raise ServiceError(f"Project names are limited to {NAME_MAX} characters.")
    with store.read() as session:
        clash = session.scalars(select(Project.id).where(Project.name == name)).first()
    if clash is not None and clash != exclude:
        raise ServiceError(f"A project named “{name}” already exists: choose another name.")
    return name


def create_project(store: Store, name: str) -> ProjectInfo:
    """A new, empty project; the name is trimmed and must be unique."""
    name = _check_name(store, name)
    with store.write() as session:
        user_id = session.scalars(select(User.id).order_by(User.id)).first()
        project = Project(user_id=user_id, name=name)
        session.add(project)
        session.flush()
        return ProjectInfo(project.id, name, 0, 0, 0)


def rename_project(store: Store, project_id: int, name: str) -> ProjectInfo:
    name = _check_name(store, name, exclude=project_id)
    with store.write() as session:
        project = session.get(Project, project_id)
        if project is None:
            raise ServiceError(f"There is no project with id {project_id}: it may have been deleted.")
        if project.name == DEFAULT_PROJECT:
            raise ServiceError("The Default project keeps its name (jobs without a project go there).")
        project.name = name
    return get_project(store, project_id)


def delete_project(store: Store, project_id: int) -> None:
    """Remove the project's rows (dataset registrations, jobs, metrics); files on disk stay.

    Deleting a project that is already gone does nothing (the user's intent is met).
    """
    with store.write() as session:
        project = session.get(Project, project_id)
        if project is None:
            return
        if project.name == DEFAULT_PROJECT:
            raise ServiceError("The Default project cannot be deleted.")
        active = session.scalar(select(func.count()).where(
            TrainingJob.project_id == project_id, TrainingJob.status.in_(ACTIVE_STATES)))
        if active:
            raise ServiceError(f"The project “{project.name}” has queued or running jobs: stop them first "
                               "(`vision-platform cancel JOB_ID`).")
        session.delete(project)
