"""Project rows for the sidebar (create, rename, delete). Plain functions: no Qt here."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from core.db.engine import Store
from core.db.models import Dataset, Project, TrainingJob, User

DEFAULT_PROJECT = "Default"


class ProjectError(ValueError):
    pass


@dataclass
class ProjectInfo:
    id: int
    name: str
    datasets: int
    jobs: int
    running: int


def list_projects(store: Store) -> list[ProjectInfo]:
    with store.read() as session:
        rows = session.execute(select(Project.id, Project.name).order_by(Project.id)).all()
        datasets = dict(session.execute(select(Dataset.project_id, func.count()).group_by(Dataset.project_id)).all())
        jobs = dict(session.execute(select(TrainingJob.project_id, func.count()).group_by(TrainingJob.project_id)).all())
        running = dict(session.execute(
            select(TrainingJob.project_id, func.count())
            .where(TrainingJob.status.in_(("running", "queued")))
            .group_by(TrainingJob.project_id)
        ).all())
    return [ProjectInfo(pid, name, datasets.get(pid, 0), jobs.get(pid, 0), running.get(pid, 0)) for pid, name in rows]


def _check_name(store: Store, name: str, exclude: int | None = None) -> str:
    name = name.strip()
    if not name:
        raise ProjectError("A project needs a name.")
    if len(name) > 256:
        raise ProjectError("Project names are limited to 256 characters.")
    with store.read() as session:
        clash = session.scalars(select(Project.id).where(Project.name == name)).first()
    if clash is not None and clash != exclude:
        raise ProjectError(f"A project named “{name}” already exists.")
    return name


def create_project(store: Store, name: str) -> int:
    name = _check_name(store, name)
    with store.write() as session:
        user_id = session.scalars(select(User.id).order_by(User.id)).first()
        project = Project(user_id=user_id, name=name)
        session.add(project)
        session.flush()
        return project.id


def rename_project(store: Store, project_id: int, name: str) -> None:
    name = _check_name(store, name, exclude=project_id)
    with store.write() as session:
        project = session.get(Project, project_id)
        if project is None:
            raise ProjectError("That project no longer exists.")
        if project.name == DEFAULT_PROJECT:
            raise ProjectError("The Default project keeps its name (jobs without a project go there).")
        project.name = name


def delete_project(store: Store, project_id: int) -> None:
    """Remove the project's rows (datasets registrations, jobs, metrics); files on disk stay."""
    with store.write() as session:
        project = session.get(Project, project_id)
        if project is None:
            return
        if project.name == DEFAULT_PROJECT:
            raise ProjectError("The Default project cannot be deleted.")
        active = session.scalar(select(func.count()).where(
            TrainingJob.project_id == project_id, TrainingJob.status.in_(("running", "queued"))))
        if active:
            raise ProjectError("This project has queued or running jobs: stop them first.")
        session.delete(project)
