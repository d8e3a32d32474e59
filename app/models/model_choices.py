"""Models the Inference page can load: finished jobs' checkpoints, imported weights, any file.

No Qt; runs in a worker thread. Job checkpoints were written by this app, so they load as trusted;
a file the user picks elsewhere loads untrusted first (the worker says when it needs confirmation).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.models.jobs_table import format_metric

WEIGHT_SUFFIXES = (".pt", ".pth", ".safetensors", ".bin")


@dataclass(frozen=True)
class ModelChoice:
    label: str
    path: str
    framework: str
    trusted: bool
    task: str | None = None  # what the job trained, when known
    job_id: int | None = None

    @property
    def key(self) -> str:
        """Identifies the choice in the picker (a string: it round-trips through Qt item data)."""
        return f"{self.framework}:{self.path}"


def guess_framework(path: Path) -> str:
    """Ultralytics for YOLO names (and files inside an Ultralytics run), timm otherwise."""
    name = path.name.lower()
    if name.startswith(("yolo", "rtdetr")) or "ultralytics" in str(path).lower():
        return "ultralytics"
    return "timm"


def list_model_choices(store: Any, project_id: int) -> list[ModelChoice]:
    from sqlalchemy import select

    from core import paths
    from core.db.models import Checkpoint, TrainingJob

    choices: list[ModelChoice] = []
    with store.read() as session:
        rows = session.execute(
            select(TrainingJob.id, TrainingJob.name, TrainingJob.framework, TrainingJob.task_type, TrainingJob.status,
                   Checkpoint.kind, Checkpoint.path, Checkpoint.epoch, Checkpoint.metric_name, Checkpoint.metric_value)
            .join(Checkpoint, Checkpoint.job_id == TrainingJob.id)
            .where(TrainingJob.project_id == project_id, Checkpoint.kind.in_(("best", "last")))
            .order_by(TrainingJob.id.desc(), Checkpoint.kind)
        ).all()
    for job_id, name, framework, task, status, kind, path, epoch, metric_name, metric_value in rows:
        if not Path(path).is_file() or status == "running":
            continue
        metric = format_metric(metric_name, metric_value)
        detail = ", ".join(part for part in (f"epoch {epoch}" if epoch else "", metric) if part)
        label = f"#{job_id} {name or 'job'} — {kind}" + (f" ({detail})" if detail else "")
        choices.append(ModelChoice(label, path, framework, True, task, job_id))
    weights = paths.weights_dir()
    for file in sorted(weights.iterdir()) if weights.is_dir() else []:
        if file.is_file() and file.suffix.lower() in WEIGHT_SUFFIXES:
            choices.append(ModelChoice(f"Imported: {file.name}", str(file), guess_framework(file), True))
    return choices


def file_choice(path: str) -> ModelChoice:
    file = Path(path)
    return ModelChoice(f"File: {file.name}", str(file), guess_framework(file), False)
