"""Registered datasets: the ``datasets`` table, without any Qt (the GUI and the CLI share it).

A registered dataset is a pointer to a folder or .zip on disk plus what indexing found (format,
task, counts, class names) and the split the user chose, so a project lists its datasets without
re-reading them. Every write goes through :meth:`Store.write`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from core.db.engine import Store
from core.db.models import Dataset, TrainingJob

SPLIT_KEYS = ("strategy", "ratio", "seed", "file")


@dataclass
class DatasetInfo:
    """A plain copy of one ``datasets`` row (safe to pass between threads)."""

    id: int
    project_id: int
    name: str
    path: str
    format: str | None
    task_type: str | None
    num_images: int | None
    num_classes: int | None
    class_names: list[str] = field(default_factory=list)
    split_config: dict[str, Any] = field(default_factory=dict)
    source_url: str | None = None


def _info(row: Dataset) -> DatasetInfo:
    return DatasetInfo(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        path=row.path,
        format=row.format,
        task_type=row.task_type,
        num_images=row.num_images,
        num_classes=row.num_classes,
        class_names=json.loads(row.class_names) if row.class_names else [],
        split_config=json.loads(row.split_config) if row.split_config else {},
        source_url=row.source_url,
    )


def add_dataset(
    store: Store,
    project_id: int,
    path: str | Path,
    fmt: str,
    index: Any,
    *,
    name: str | None = None,
    source_url: str | None = None,
) -> int:
    """Register ``path`` (already opened as ``index``, a ``DatasetIndex``) in a project.

    Registering the same path twice in one project updates the existing row instead of adding a
    duplicate, so re-adding a dataset after editing it on disk refreshes its counts.
    """
    path_text = str(Path(path).resolve()) if not str(path).startswith("r2://") else str(path)
    class_names = list(index.class_names)
    values = {
        "name": name or Path(path_text).name or path_text,
        "format": fmt,
        "task_type": index.task_hint,
        "num_images": len(index.images),
        "num_classes": len(class_names),
        "class_names": json.dumps(class_names),
    }
    with store.write() as session:
        row = session.scalars(
            select(Dataset).where(Dataset.project_id == project_id, Dataset.path == path_text)
        ).first()
        if row is None:
            row = Dataset(project_id=project_id, path=path_text, source_url=source_url, **values)
            session.add(row)
        else:
            for key, value in values.items():
                setattr(row, key, value)
            if source_url:
                row.source_url = source_url
        session.flush()
        return row.id


def get_dataset(store: Store, dataset_id: int) -> DatasetInfo | None:
    with store.read() as session:
        row = session.get(Dataset, dataset_id)
        return _info(row) if row is not None else None


def list_datasets(store: Store, project_id: int | None = None) -> list[DatasetInfo]:
    with store.read() as session:
        query = select(Dataset).order_by(Dataset.id)
        if project_id is not None:
            query = query.where(Dataset.project_id == project_id)
        return [_info(row) for row in session.scalars(query)]


def save_split_config(store: Store, dataset_id: int, split: dict[str, Any]) -> None:
    """Keep the chosen split (strategy, ratio, seed, file) with the dataset; unknown keys are refused."""
    unknown = set(split) - set(SPLIT_KEYS)
    if unknown:
        raise ValueError(f"unknown split keys: {', '.join(sorted(unknown))}")
    with store.write() as session:
        row = session.get(Dataset, dataset_id)
        if row is None:
            raise ValueError(f"no dataset with id {dataset_id}")
        row.split_config = json.dumps(split)


def update_format(store: Store, dataset_id: int, fmt: str, index: Any) -> None:
    """The user overrode the detected format: store it and what the re-read index found."""
    with store.write() as session:
        row = session.get(Dataset, dataset_id)
        if row is None:
            raise ValueError(f"no dataset with id {dataset_id}")
        row.format = fmt
        row.task_type = index.task_hint
        row.num_images = len(index.images)
        row.num_classes = len(index.class_names)
        row.class_names = json.dumps(list(index.class_names))


def delete_dataset(store: Store, dataset_id: int) -> None:
    """Forget a dataset (its files on disk are never touched; jobs keep their own dataset path)."""
    with store.write() as session:
        row = session.get(Dataset, dataset_id)
        if row is not None:
            session.delete(row)


def jobs_using(store: Store, dataset_id: int) -> int:
    with store.read() as session:
        return len(list(session.scalars(select(TrainingJob.id).where(TrainingJob.dataset_id == dataset_id))))
