"""The embedded SQLite store: models, engine set-up, migrations and session helpers."""

from __future__ import annotations

from core.db.engine import Store, open_store
from core.db.models import (
    AppSetting,
    Artifact,
    Base,
    Checkpoint,
    Dataset,
    Project,
    TrainingJob,
    TrainingMetric,
    Upload,
    User,
)

__all__ = [
    "AppSetting",
    "Artifact",
    "Base",
    "Checkpoint",
    "Dataset",
    "Project",
    "Store",
    "TrainingJob",
    "TrainingMetric",
    "Upload",
    "User",
    "open_store",
]
